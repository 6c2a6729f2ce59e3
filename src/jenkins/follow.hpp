// Following a delivered trigger in Jenkins (jenkins-builds-and-jobs.md §2.1): the JSON API paths
// to read and the parsers of their answers. Pure functions, no I/O; the follower
// (src/follow/) drives them through JenkinsClient::read().
#pragma once

#include <hookrelay/error.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hookrelay::jenkins {

/// The queue item id at the end of a 201/303 Location: "…/queue/item/<id>/" (the trailing '/'
/// optional). nullopt for anything else.
std::optional<std::int64_t> queue_item_id(std::string_view location) noexcept;

/// "queue/item/<id>/api/json?tree=id,why,blocked,stuck,cancelled,executable[number,url]"
std::string queue_item_path(std::int64_t id);

/// job_path(job) + "<number>/api/json?tree=number,url,building,result,duration,timestamp,queueId"
std::string build_path(const std::vector<std::string>& job, std::int64_t number);

/// job_path(job) + "api/json?tree=builds[number,queueId,url]{0,50}": the job's newest builds,
/// to find the one made from a queue item Jenkins has forgotten (left items live 5 minutes).
std::string builds_path(const std::vector<std::string>& job);

/// A queue item as GET queue/item/<id>/api/json answers it.
struct QueueItem {
    bool cancelled = false;              ///< left the queue without a build (cancelled)
    std::optional<std::int64_t> number;  ///< set when it left the queue as a build
    std::string url;                     ///< that build's URL (Jenkins' root URL), "" otherwise
    std::string why;                     ///< while waiting: why ("In the quiet period. …"), or ""
};

/// Parses a queue item. A left item with executable null and cancelled false (the moment
/// between leaving the queue and the build existing) is neither cancelled nor numbered: poll
/// again. errc::malformed_json (with a one-line reason in *why when given) for anything that is
/// not a JSON object or has fields of the wrong type.
result<QueueItem> parse_queue_item(std::string_view json, std::string* why = nullptr);

/// A build as GET <job>/<n>/api/json answers it.
struct Build {
    std::int64_t number = 0;
    std::string url;
    bool building = true;
    std::string result;  ///< "" while building (null), else SUCCESS, UNSTABLE, FAILURE, ...
    std::optional<std::chrono::system_clock::time_point> started_at;  ///< `timestamp`
    std::chrono::milliseconds duration{0};                            ///< 0 until it finished
    std::optional<std::int64_t> queue_id;
};

/// Parses a build; errc::malformed_json as for parse_queue_item.
result<Build> parse_build(std::string_view json, std::string* why = nullptr);

/// The build with queueId `queue_id` in a job's `builds` list (builds_path()), nullopt when
/// none has it; errc::malformed_json as for parse_queue_item.
result<std::optional<Build>> find_build_by_queue_id(std::string_view json, std::int64_t queue_id,
                                                    std::string* why = nullptr);

}  // namespace hookrelay::jenkins
