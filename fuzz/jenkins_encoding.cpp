// The Jenkins client's encoders and its base URL parser, each checked against a decoding written
// here: a job path is "job/<segment>/" per folder and decodes back to the folder names; percent,
// form and base64 encodings decode back to their input; a parsed base URL, written out again as
// origin + path, parses to the same thing. FuzzedDataProvider splits the input: the number of job
// segments and form fields (from the end), the segments and the field names and values as escaped
// strings, the rest is the URL (and the text for the plain encoders).
#include "jenkins/client.hpp"
#include "jenkins/encoding.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace hookrelay::jenkins;

constexpr std::size_t k_max_field = 1024;

void check(bool ok) {
    if (!ok) std::abort();
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;  // the encoders write upper case only
}

bool unreserved(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

// Inverse of percent_encode (and of a form component when plus_is_space); nullopt for anything
// the encoder would not have written.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space = false) {
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if (c == '%') {
            if (i + 2 >= text.size()) return std::nullopt;
            const int hi = hex_value(text[i + 1]);
            const int lo = hex_value(text[i + 2]);
            if (hi < 0 || lo < 0) return std::nullopt;
            const auto byte = static_cast<char>((hi << 4) | lo);
            if (unreserved(byte) || (plus_is_space && byte == ' ')) return std::nullopt;
            out += byte;
            i += 2;
        } else if (plus_is_space && c == '+') {
            out += ' ';
        } else if (unreserved(c)) {
            out += c;
        } else {
            return std::nullopt;
        }
    }
    return out;
}

// Inverse of name_encode.
std::string name_decode(std::string_view text) {
    if (text == "%00") return "";
    if (text == "%2E") return ".";
    if (text == "%2E.") return "..";
    std::string out;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%') {
            check(i + 2 < text.size());
            const int hi = hex_value(text[i + 1]);
            const int lo = hex_value(text[i + 2]);
            check(hi >= 0 && lo >= 0);
            out += static_cast<char>((hi << 4) | lo);
            i += 2;
        } else {
            out += text[i];
        }
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    static constexpr std::string_view k_alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (text.size() % 4 != 0) return std::nullopt;
    std::string out;
    for (std::size_t i = 0; i < text.size(); i += 4) {
        unsigned n = 0;
        int pad = 0;
        for (std::size_t k = 0; k < 4; ++k) {
            const char c = text[i + k];
            unsigned digit = 0;
            if (c == '=') {
                if (i + 4 != text.size() || k < 2) return std::nullopt;
                ++pad;
            } else {
                if (pad > 0) return std::nullopt;
                const auto at = k_alphabet.find(c);
                if (at == std::string_view::npos) return std::nullopt;
                digit = static_cast<unsigned>(at);
            }
            n = (n << 6) | digit;
        }
        out += static_cast<char>((n >> 16) & 0xFF);
        if (pad < 2) out += static_cast<char>((n >> 8) & 0xFF);
        if (pad < 1) out += static_cast<char>(n & 0xFF);
    }
    return out;
}

void check_job_path(const std::vector<std::string>& job) {
    const auto path = job_path(job);
    std::string_view rest = path;
    for (const auto& name : job) {
        check(rest.starts_with("job/"));
        rest.remove_prefix(4);
        const auto slash = rest.find('/');
        check(slash != std::string_view::npos);
        const auto encoded = percent_decode(rest.substr(0, slash));
        check(encoded && encoded->find('/') == std::string::npos);
        check(name_decode(*encoded) == name);
        rest.remove_prefix(slash + 1);
    }
    check(rest.empty());
}

void check_form(const std::vector<std::pair<std::string, std::string>>& fields) {
    const auto form = form_encode(fields);
    std::vector<std::pair<std::string, std::string>> decoded;
    std::string_view rest = form;
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const auto pair = rest.substr(0, amp);
        const auto eq = pair.find('=');
        check(eq != std::string_view::npos);
        auto name = percent_decode(pair.substr(0, eq), /*plus_is_space=*/true);
        auto value = percent_decode(pair.substr(eq + 1), /*plus_is_space=*/true);
        check(name && value);
        decoded.emplace_back(std::move(*name), std::move(*value));
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    }
    // A single field with an empty name and value encodes as "=", never as nothing.
    check(decoded == fields);
}

void check_base_url(const std::string& url) {
    std::string why;
    const auto base = parse_base_url(url, why);
    if (!base) {
        check(!why.empty());
        return;
    }
    check(base->path.size() >= 1 && base->path.front() == '/' && base->path.back() == '/');
    check(base->port != 0 && !base->host.empty());
    check(base->origin == (base->tls ? "https://" : "http://") + base->host_header);
    const auto again = parse_base_url(base->origin + base->path, why);
    check(again && again->tls == base->tls && again->host == base->host &&
          again->port == base->port && again->path == base->path &&
          again->host_header == base->host_header && again->origin == base->origin);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider provider(data, size);
    const auto segments = provider.ConsumeIntegralInRange<std::size_t>(0, 6);
    const auto field_count = provider.ConsumeIntegralInRange<std::size_t>(0, 4);
    std::vector<std::string> job;
    for (std::size_t i = 0; i < segments; ++i) {
        job.push_back(provider.ConsumeRandomLengthString(k_max_field));
    }
    std::vector<std::pair<std::string, std::string>> fields;
    for (std::size_t i = 0; i < field_count; ++i) {
        auto name = provider.ConsumeRandomLengthString(k_max_field);
        fields.emplace_back(std::move(name), provider.ConsumeRandomLengthString(k_max_field));
    }
    const std::string text = provider.ConsumeRemainingBytesAsString();

    check_job_path(job);
    check_form(fields);
    check(percent_decode(percent_encode(text)) == text);
    check(base64_decode(base64(text)) == text);
    check_base_url(text);
    return 0;
}
