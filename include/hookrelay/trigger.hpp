// One Jenkins build to request, as rules render it and the store and the Jenkins client carry
// it. Plain data.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace hookrelay {

/// One Jenkins build to request, fully rendered.
struct TriggerRequest {
    std::string rule;     ///< name of the rule that produced it
    std::string jenkins;  ///< name of the Jenkins entry
    /// Folder path segments, not encoded: {"acme", "app", "feature/x"}; a '/' inside a segment is
    /// part of the item name (multibranch branches) and is encoded by the Jenkins client.
    std::vector<std::string> job;
    std::vector<std::pair<std::string, std::string>> parameters;  ///< rendered, config order
    std::string cause;  ///< text naming the delivery, shown by Jenkins as the build cause
};

/// "acme/app/feature%2Fx": segments joined with '/', a '/' inside a segment written as %2F.
std::string job_display_path(const std::vector<std::string>& job);

}  // namespace hookrelay
