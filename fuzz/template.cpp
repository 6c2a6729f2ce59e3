// Template parser and renderer: any text is parsed; what parses is rendered against the sample
// events. Checks: text without "{{" or "}}" is a literal that renders to itself.
#include "render/template.hpp"
#include "sample_events.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using hookrelay::render::Template;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    std::string why;
    std::size_t offset = 0;
    auto parsed = Template::parse(text, &why, &offset);
    if (!parsed) {
        // The offset locates the problem for column numbers: it must lie inside the text.
        if (offset > text.size() || why.empty()) std::abort();
        return 0;
    }
    const bool plain =
        text.find("{{") == std::string_view::npos && text.find("}}") == std::string_view::npos;
    if (plain && !parsed->is_literal()) std::abort();
    for (const auto& event : hookrelay::fuzz::sample_events()) {
        auto rendered = parsed->render(event, &why);
        if (plain && (!rendered || *rendered != text)) std::abort();
    }
    return 0;
}
