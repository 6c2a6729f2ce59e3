// A prune pass (Store::prune, and the writer's scheduled one) in bounded steps: each step
// (Admin::prune_step) is a write Op of its own, posted behind whatever is queued when the step
// before it committed, so the submissions and queue operations that arrive during a long pass
// wait for one step, never for the whole pass.
#pragma once

#include "store/sqlite/writer.hpp"

#include <hookrelay/store.hpp>

#include <cstddef>
#include <functional>

namespace hookrelay::store::sqlite {

/// Deliveries a prune step takes at most. Deleting one (its body's overflow pages, its index
/// entries, a finished trigger with its own and its attempts) took about 175 µs on the shared
/// 2-core test machine (bench/scale/run.sh: 256 per step held a webhook up to 78 ms): 64 keep a
/// step near 10 ms plus its commit.
inline constexpr std::size_t k_prune_step = 64;

/// Posts to `writer` the first step of a pass that prunes what expired at `now` (Store::prune);
/// each step posts the next after its commit. `done` gets the number of deliveries removed once
/// a step finds nothing more, or the failure of the step that failed (the steps before it stay
/// committed). Like every Op, a step posted after Writer::stop() is dropped, and `done` then
/// never runs. Callable on any thread.
void post_prune_pass(Writer& writer, TimePoint now, std::function<void(result<std::size_t>)> done);

}  // namespace hookrelay::store::sqlite
