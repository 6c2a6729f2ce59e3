// The generic source in the forge table: any sender of HMAC-signed JSON (internal tools,
// artifact repositories), described by its source's config.
#pragma once

#include "ingest/forge.hpp"

namespace hookrelay::ingest::generic {

/// Verification as the source's `signature:` says (header, algorithm, encoding, prefix, signed
/// content, optional timestamp header within `timestamp_window`); the event name and delivery
/// id from the headers or payload fields its `event:` and `delivery_id:` name. Every event is
/// kind other; conditions and templates read the payload through `payload.*`. JSON only.
const Forge& forge() noexcept;

}  // namespace hookrelay::ingest::generic
