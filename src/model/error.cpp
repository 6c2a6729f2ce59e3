#include <hookrelay/error.hpp>

#include <string>

namespace hookrelay {
namespace {

class Category final : public boost::system::error_category {
  public:
    const char* name() const noexcept override { return "hookrelay"; }

    std::string message(int ev) const override {
        switch (static_cast<errc>(ev)) {
            case errc::ok:
                return "success";
            case errc::signature_missing:
                return "signature or token missing";
            case errc::signature_mismatch:
                return "signature or token does not match";
            case errc::signature_malformed:
                return "signature header malformed";
            case errc::malformed_json:
                return "body is not a JSON object";
            case errc::malformed_form:
                return "form body has no JSON payload field (send the JSON with Content-Type: "
                       "application/json, or a form's payload=<json>)";
            case errc::payload_too_large:
                return "payload too large to parse";
            case errc::unsupported_media_type:
                return "unsupported content type";
            case errc::missing_event_header:
                return "event header missing";
            case errc::missing_field:
                return "payload lacks a required field";
            case errc::ref_mismatch:
                return "ref does not fit the event: a tag push needs refs/tags/<name>, a push "
                       "refs/heads/<name>";
            case errc::unknown_variable:
                return "unknown template variable";
            case errc::variable_not_set:
                return "template variable not set for this event";
            case errc::bad_template:
                return "malformed template";
            case errc::bad_glob:
                return "malformed glob pattern";
            case errc::bad_regex:
                return "malformed regular expression";
            case errc::secret_unresolved:
                return "secret reference could not be resolved";
            case errc::bad_config:
                return "invalid configuration";
            case errc::store_unavailable:
                return "store unavailable";
            case errc::timestamp_out_of_window:
                return "signed timestamp outside the accepted window (a replay, or a clock that "
                       "is off)";
            case errc::timestamp_malformed:
                return "signed timestamp missing or malformed";
            case errc::too_many_events:
                return "delivery carries too many events";
            case errc::store_busy:
                return "store busy";
            case errc::store_timeout:
                return "store did not answer in time";
            case errc::store_full:
                return "store full (a full disk, store.max_size, or an intake log whose segments "
                       "all wait to be indexed)";
            case errc::store_incompatible:
                return "store written by a newer hookrelay or not a hookrelay store";
            case errc::store_locked:
                return "state directory in use by another hookrelay";
            case errc::store_closed:
                return "store closed";
            case errc::other_forge_event:
                return "the event is another forge's";
        }
        return "unknown hookrelay error";
    }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
    static const Category category;
    return category;
}

}  // namespace hookrelay

namespace hookrelay {

bool is_retryable(const boost::system::error_code& error) noexcept {
    if (error.category() != error_category()) return false;
    switch (static_cast<errc>(error.value())) {
        case errc::store_unavailable:
        case errc::store_busy:
        case errc::store_timeout:
        case errc::store_full:
            return true;
        default:
            return false;
    }
}

}  // namespace hookrelay
