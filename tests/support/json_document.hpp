// Test payloads written as Boost.JSON values, as the documents ingest parses.
#pragma once

#include <hookrelay/json_document.hpp>

#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include <memory>

namespace hookrelay::test {

/// `v` as the document parsing its JSON text gives.
inline std::shared_ptr<const JsonDocument> document(const boost::json::value& v) {
    return JsonDocument::parse(boost::json::serialize(v));
}

}  // namespace hookrelay::test
