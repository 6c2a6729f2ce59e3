// The forge table. One line per forge, in Provider order.
#include "ingest/forge.hpp"

#include "ingest/bitbucket_cloud/forge.hpp"
#include "ingest/bitbucket_server/forge.hpp"
#include "ingest/forgejo/forge.hpp"
#include "ingest/generic/forge.hpp"
#include "ingest/gitea/forge.hpp"
#include "ingest/github/forge.hpp"
#include "ingest/gitlab/forge.hpp"

#include <array>
#include <cassert>

namespace hookrelay::ingest {
namespace {

std::array<const Forge*, 7> make_table() noexcept {
    std::array<const Forge*, 7> table = {
        &github::forge(),          &gitlab::forge(),           &gitea::forge(),   &forgejo::forge(),
        &bitbucket_cloud::forge(), &bitbucket_server::forge(), &generic::forge(),
    };
    assert(table.size() == providers().size());
    for (std::size_t i = 0; i < table.size(); ++i) {
        assert(static_cast<std::size_t>(table[i]->provider) == i);
    }
    return table;
}

const std::array<const Forge*, 7>& table() noexcept {
    static const auto t = make_table();
    return t;
}

}  // namespace

std::span<const Forge* const> forges() noexcept {
    return table();
}

const Forge& forge(Provider provider) noexcept {
    const auto index = static_cast<std::size_t>(provider);
    assert(index < table().size());
    return *table()[index];
}

}  // namespace hookrelay::ingest
