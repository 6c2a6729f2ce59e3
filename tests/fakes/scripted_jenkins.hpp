// A JenkinsClient for dispatcher unit tests: answers each trigger and probe with the next
// scripted outcome (queued when the script is empty), records what it was asked, and can hold
// requests in flight until the test lets them go. Single-threaded (the test's io_context).
#pragma once

#include <hookrelay/jenkins.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <deque>
#include <list>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace hookrelay::test {

class ScriptedJenkins final : public JenkinsClient {
  public:
    explicit ScriptedJenkins(boost::asio::any_io_executor executor);
    ~ScriptedJenkins() override;

    /// Outcomes for the next trigger() calls, in order.
    void then(JenkinsOutcome::Kind kind, int http_status = 0, std::string detail = "");
    void then(JenkinsOutcome outcome);
    /// Outcomes for the next probe() calls (default: queued, i.e. "answers").
    void then_probe(JenkinsOutcome::Kind kind, std::string detail = "");
    /// Make the next trigger() throw (a bug in the client).
    void then_throw();
    /// While set, trigger() waits until release() before answering.
    void set_hanging(bool hanging) { hanging_ = hanging; }
    /// Lets every waiting trigger() answer.
    void release();

    std::vector<TriggerRequest> requests;  ///< every trigger() call, in order
    std::size_t probes = 0;
    std::size_t waiting() const { return gates_.size(); }

    boost::asio::awaitable<JenkinsOutcome> trigger(TriggerRequest request,
                                                   std::optional<Secret> job_token) override;
    boost::asio::awaitable<JenkinsOutcome> probe() override;

    struct Gate;

  private:
    boost::asio::any_io_executor executor_;
    std::deque<JenkinsOutcome> script_;
    std::deque<JenkinsOutcome> probe_script_;
    std::size_t throws_ = 0;
    bool hanging_ = false;
    std::list<std::shared_ptr<Gate>> gates_;
};

}  // namespace hookrelay::test
