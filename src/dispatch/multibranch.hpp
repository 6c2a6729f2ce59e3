// Multibranch projects and scans, as the dispatcher decides them (no I/O): a branch job that
// does not exist yet (Jenkins answers 404 until a scan of its multibranch project creates it) is
// tried again every branch_poll, without using the trigger's retry budget, until branch_wait has
// passed since a scan that covers it (one requested after the push) began; a `scan:` trigger
// whose scan another one covers is done.
#pragma once

#include <hookrelay/config.hpp>
#include <hookrelay/jenkins.hpp>
#include <hookrelay/store.hpp>

#include <string>
#include <vector>

namespace hookrelay::dispatch {

/// Whether `outcome` says the branch job of a multibranch trigger does not exist (yet): a 404.
bool branch_job_missing(const TriggerRequest& request, const JenkinsOutcome& outcome);

/// The branch job is not there yet: the trigger waits for it (its state kept, the attempt not
/// counted, due again after branch_poll), or is dead once branch_wait has passed since
/// `covering_scan` (a scan requested after the push; nullopt while none has been). `scan` tells
/// what was done about it ("scan of acme/app requested", ...), for the history and the log.
TriggerUpdate branch_pending(const StoredTrigger& trigger, const JenkinsOutcome& outcome,
                             const JenkinsConfig& jenkins, TimePoint now, const std::string& scan,
                             std::optional<TimePoint> covering_scan);

/// The branch job is missing and its project cannot be scanned (404: no such project; 500:
/// not a multibranch project): dead, saying so.
TriggerUpdate branch_unscannable(const StoredTrigger& trigger, const JenkinsOutcome& outcome,
                                 const JenkinsOutcome& scan, TimePoint now);

/// A `scan:` trigger whose project had a scan requested at `at`, after the trigger was created:
/// that scan covers it, delivered without another.
TriggerUpdate scan_covered(const StoredTrigger& trigger, TimePoint at, TimePoint now);

/// A `scan:` trigger that must wait for the project's scan_interval: due again at `at`, not
/// counted.
TriggerUpdate scan_deferred(const StoredTrigger& trigger, TimePoint at, TimePoint now);

/// "Waiting for Jenkins <name> to create the job of branch <b>" (pending), for the commit.
StatusWish branch_status(const std::string& jenkins, const TriggerRequest& request);

}  // namespace hookrelay::dispatch
