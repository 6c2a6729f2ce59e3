// Project error codes, registered as a boost::system error category so domain functions can
// return boost::system::result<T> and callers can compare against hookrelay::errc values.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>
#include <type_traits>

namespace hookrelay {

/// Every failure a domain function (verify, parse, normalize, match, render, config) reports.
enum class errc {
    /// Not an error; never returned.
    ok = 0,
    /// The signature or token header the source requires is absent (HTTP 401).
    signature_missing,
    /// A signature or token is present but matches none of the configured secrets (HTTP 401).
    signature_mismatch,
    /// The signature header is present but not in the forge's format, e.g. no `sha256=` (401).
    signature_malformed,
    /// The body is not valid JSON, or not an object (HTTP 400).
    malformed_json,
    /// An `application/x-www-form-urlencoded` body without a usable `payload` field (HTTP 400).
    malformed_form,
    /// The parsed form of the body would need more memory than the parse may use (HTTP 413).
    payload_too_large,
    /// The Content-Type is neither JSON nor form-encoded (HTTP 415).
    unsupported_media_type,
    /// The forge's event header is missing (HTTP 400).
    missing_event_header,
    /// The JSON is well-formed but lacks a field the event kind requires (HTTP 400).
    missing_field,
    /// A push or tag push whose `ref` does not fit its event: a GitLab Tag Push Hook not under
    /// refs/tags/, a GitLab Push Hook not under refs/heads/ (HTTP 400).
    ref_mismatch,
    /// A template names a variable the event model does not have (config error).
    unknown_variable,
    /// A template variable has no value for this event and no `default` filter (render time).
    variable_not_set,
    /// A template is not well formed: unbalanced braces, unknown filter, bad arguments.
    bad_template,
    /// A glob pattern is not well formed.
    bad_glob,
    /// An `re:` pattern does not compile under RE2.
    bad_regex,
    /// A `${kind:name}` secret reference could not be resolved.
    secret_unresolved,
    /// The configuration is invalid; details are in the accompanying error list.
    bad_config,
    /// The store cannot be reached or failed to do the work (I/O error, connection lost, server
    /// down); nothing was changed. Retryable (HTTP 503 for a delivery).
    store_unavailable,
    /// A signature is valid but its signed timestamp lies outside the source's
    /// `timestamp_window`: a replay of an old delivery, or a sender whose clock is off (HTTP 401).
    timestamp_out_of_window,
    /// The signed timestamp header is missing or not a whole number of Unix seconds (HTTP 401).
    timestamp_malformed,
    /// One delivery carries more events (ref changes) than one delivery may (HTTP 400).
    too_many_events,
    /// The store is busy (a lock held elsewhere, every connection in use). Retryable.
    store_busy,
    /// The store did not answer within its deadline; the work may or may not have happened
    /// (a submit is then not acknowledged, so the forge redelivers). Retryable.
    store_timeout,
    /// The store reached store.max_size; pruning makes room. Retryable.
    store_full,
    /// The store was written by a newer hookrelay, or is not a hookrelay store. Permanent.
    store_incompatible,
    /// The state directory is in use by another hookrelay process. Permanent (for this process).
    store_locked,
    /// The store was closed; nothing more is done. Permanent.
    store_closed,
    /// The event is another forge's that shares this one's headers and signature (a Bitbucket
    /// Cloud hook pointed at a Bitbucket Data Center source, or the reverse) (HTTP 400).
    other_forge_event,
};

/// Whether a store failure may succeed when tried again (unavailable, busy, timeout, full), as
/// opposed to permanent ones (incompatible, locked, closed) and non-store codes.
bool is_retryable(const boost::system::error_code& error) noexcept;

/// The category for errc; name "hookrelay".
const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

template <class T>
using result = boost::system::result<T>;

}  // namespace hookrelay

namespace boost::system {
template <>
struct is_error_code_enum<hookrelay::errc> : std::true_type {};
}  // namespace boost::system
