// A JenkinsClient for dispatcher unit tests: answers each trigger, probe, scan and cancel_item
// with the next scripted outcome (queued when the script is empty), each read() with the answer
// scripted for its path, records what it was asked, and can hold trigger requests in flight until
// the test lets them go. Single-threaded (the test's io_context).
#pragma once

#include <hookrelay/jenkins.hpp>

#include <boost/asio/any_io_executor.hpp>

#include <deque>
#include <list>
#include <map>
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
    /// Answers for read(path) of exactly this path, in order; the last one stays (every later
    /// read of the path gets it again, as polling the same Jenkins item would). A path with no
    /// answer scripted is answered permanent, HTTP 404.
    void then_read(std::string path, JenkinsOutcome outcome);
    /// As the real client would report `http_status` with `body`: 2xx queued (with the body),
    /// 401 auth_failed, 429 throttled, 500 server_error, 502/503/504 and 0 unavailable, any other
    /// status permanent.
    void then_read(std::string path, int http_status, std::string body = "");
    /// Outcomes for the next scan() calls, in order (default: queued, HTTP 302, as Jenkins
    /// answers a scheduled scan).
    void then_scan(JenkinsOutcome::Kind kind, int http_status = 0, std::string detail = "");
    /// Outcomes for the next cancel_item() calls, in order (default: queued, HTTP 204).
    void then_cancel(JenkinsOutcome::Kind kind, int http_status = 0, std::string detail = "");
    /// Make the next trigger() throw (a bug in the client).
    void then_throw();
    /// While set, trigger() waits until release() before answering.
    void set_hanging(bool hanging) { hanging_ = hanging; }
    /// Probes hang the same way (until release()).
    void set_probe_hanging(bool hanging) { probe_hanging_ = hanging; }
    /// Lets every waiting trigger() answer.
    void release();
    /// Lets the trigger() that has waited longest answer.
    void release_first();

    std::vector<TriggerRequest> requests;           ///< every trigger() call, in order
    std::vector<std::optional<Secret>> job_tokens;  ///< the job token of each, in order
    std::size_t probes = 0;
    std::vector<std::string> reads;               ///< every read() path, in order
    std::vector<std::vector<std::string>> scans;  ///< every scan() project path, in order
    std::vector<std::int64_t> cancels;            ///< every cancel_item() queue id, in order
    std::size_t waiting() const { return gates_.size(); }

    boost::asio::awaitable<JenkinsOutcome> trigger(TriggerRequest request,
                                                   std::optional<Secret> job_token) override;
    boost::asio::awaitable<JenkinsOutcome> probe() override;
    boost::asio::awaitable<JenkinsOutcome> read(std::string path) override;

    boost::asio::awaitable<JenkinsOutcome> scan(std::vector<std::string> project) override;
    boost::asio::awaitable<JenkinsOutcome> cancel_item(std::int64_t queue_id) override;

    struct Gate;

  private:
    boost::asio::any_io_executor executor_;
    std::deque<JenkinsOutcome> script_;
    std::deque<JenkinsOutcome> probe_script_;
    std::map<std::string, std::deque<JenkinsOutcome>> read_script_;
    std::deque<JenkinsOutcome> scan_script_;
    std::deque<JenkinsOutcome> cancel_script_;
    std::size_t throws_ = 0;
    bool hanging_ = false;
    bool probe_hanging_ = false;
    std::list<std::shared_ptr<Gate>> gates_;
};

}  // namespace hookrelay::test
