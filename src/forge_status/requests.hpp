// The pure halves of a status post (status_client.hpp): the request each forge expects and the
// reading of its answer. No I/O; unit-tested.
#pragma once

#include "forge_status/status_client.hpp"
#include "httpclient/client.hpp"

#include <hookrelay/event.hpp>
#include <hookrelay/store.hpp>
#include <hookrelay/trigger.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace hookrelay::forge_status {

/// How long a GitHub secondary rate limit is waited out when the answer says nothing about it
/// (GitHub's advice: at least a minute, then back off).
inline constexpr std::chrono::milliseconds k_secondary_rate_limit_wait = std::chrono::minutes(1);

/// The most characters of a forge's message a PostResult::detail carries.
inline constexpr std::size_t k_detail_message_limit = 200;

/// `api_url` as a base URL for httpclient::parse_base_url: "" gives default_api_url(provider),
/// and a path that does not end with '/' gets one ("https://HOST/api/v3" →
/// "https://HOST/api/v3/").
std::string base_url_for(Provider provider, std::string_view api_url);

/// The origin-form target of a GitHub post: base_path (from the base URL: begins and ends with
/// '/') + "repos/{owner}/{repo}/statuses/{sha}", each part percent-encoded. nullopt with a reason
/// in `why` when repository is not "owner/repo" or sha is empty.
std::optional<std::string> github_target(std::string_view base_path, std::string_view repository,
                                         std::string_view sha, std::string& why);

/// GitLab's: base_path + "projects/{id}/statuses/{sha}", where a project given by its path
/// ("group/sub/app") is percent-encoded whole ("group%2Fsub%2Fapp") and a numeric id is sent as
/// it is. nullopt with a reason in `why` when the project or the sha is empty.
std::optional<std::string> gitlab_target(std::string_view base_path, std::string_view project,
                                         std::string_view sha, std::string& why);

/// Bitbucket Cloud's: base_path + "repositories/{workspace}/{repo_slug}/commit/{sha}/statuses/
/// build". nullopt with a reason in `why` when repository is not "workspace/repo_slug" or sha is
/// empty.
std::optional<std::string> bitbucket_cloud_target(std::string_view base_path,
                                                  std::string_view repository, std::string_view sha,
                                                  std::string& why);

/// Bitbucket Data Center's: base_path + "rest/api/latest/projects/{key}/repos/{slug}/commits/
/// {sha}/builds" (repository "KEY/slug", as its normalizer names it). nullopt with a reason
/// likewise.
std::optional<std::string> bitbucket_server_target(std::string_view base_path,
                                                   std::string_view repository,
                                                   std::string_view sha, std::string& why);

/// The page a Bitbucket status links to when the wish has no build to link to (Bitbucket
/// requires a url): the commit on the forge. Cloud: "https://bitbucket.org/{workspace}/
/// {repo_slug}/commits/{sha}"; Data Center: web_root (scheme://host[:port]/context-path/, the
/// api_url) + "projects/{key}/repos/{slug}/commits/{sha}". "" when repository is not two parts.
std::string bitbucket_commit_page(Provider provider, std::string_view web_root,
                                  std::string_view repository, std::string_view sha);

/// The JSON bodies: GitHub's and Gitea's {state, target_url, description, context}, GitLab's
/// {state, name, target_url, description}; the state mapped (github_state / gitlab_state), the
/// description shortened to 140 characters; target_url and context/name left out when empty.
/// nullopt when the wish's state is not one of the forge-neutral states.
std::optional<std::string> github_body(const StatusTarget& target, const StatusWish& wish);
std::optional<std::string> gitlab_body(const StatusTarget& target, const StatusWish& wish);

/// Bitbucket's limits: Cloud refuses a key over 40 characters; both refuse a url over 450 and a
/// name over 255 (400, which would drop the status).
inline constexpr std::size_t k_bitbucket_cloud_max_key = 40;
inline constexpr std::size_t k_bitbucket_max_url = 450;
inline constexpr std::size_t k_bitbucket_max_name = 255;

/// A Bitbucket status' key for `context`: the context itself, or on Cloud, for a context over 40
/// characters, "hookrelay-" and 30 hex digits of its SHA-256 (stable, so that each post still
/// replaces the last; the name shows the context).
std::string bitbucket_key(Provider provider, std::string_view context);

/// Whether Bitbucket takes `url` as a status' link: not empty, at most 450 characters, and on
/// Cloud a URL Django's URLValidator takes: localhost, an address, or a host name whose top level
/// is two or more letters (Cloud refuses "http://jenkins:8080/…" and "http://ci.k8s/…" as "Enter
/// a valid URL").
bool bitbucket_takes_url(Provider provider, std::string_view url);

/// Bitbucket's (Cloud and Data Center): {key, name, state, url, description}: key bitbucket_key()
/// and name the context (at most 255 characters), the state mapped (bitbucket_state), url the
/// wish's target_url when Bitbucket takes it (bitbucket_takes_url) and else `fallback_url`
/// (Bitbucket refuses a status without one), the description shortened to 140 characters.
/// nullopt when the state is not forge-neutral.
std::optional<std::string> bitbucket_body(Provider provider, const StatusTarget& target,
                                          const StatusWish& wish, std::string_view fallback_url);

/// What a forge's error body says, for a detail: the JSON "message" (with GitHub's first
/// errors[].message after it, GitLab's structured messages as compact JSON), "error" (a string,
/// or Bitbucket Cloud's {"message"}), or Bitbucket Data Center's first errors[].message; else
/// the body's text with runs of whitespace made one space. Shortened to k_detail_message_limit.
std::string forge_message(std::string_view body);

/// Classifies one answer of `provider`'s status API (status_client.hpp, "Answers"). `now` is for
/// Retry-After dates and x-ratelimit-reset; `token` is removed from the detail should the forge
/// echo it.
PostResult classify(Provider provider, const httpclient::Response& response,
                    std::chrono::system_clock::time_point now, std::string_view token);

}  // namespace hookrelay::forge_status
