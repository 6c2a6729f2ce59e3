#include "store/sqlite/prune.hpp"

#include <cstdint>
#include <memory>
#include <utility>

namespace hookrelay::store::sqlite {
namespace {

struct PrunePass {
    TimePoint now;
    std::int64_t cursor = 0;
    std::size_t removed = 0;
    std::function<void(result<std::size_t>)> done;
};

Writer::Op prune_step_op(std::shared_ptr<PrunePass> pass) {
    Writer::Op op;
    op.mode = Writer::Mode::write;
    op.what = "prune";
    op.while_held = Writer::WhileHeld::runs;
    op.run = [pass](Writer& writer) -> Writer::Answer {
        // On a copy: the pass moves on only once the step committed.
        std::int64_t cursor = pass->cursor;
        const PruneStep step =
            writer.admin().prune_step(writer.admin().prune_cutoff(pass->now), cursor, k_prune_step);
        if (step.removed > 0) writer.freed_space();
        return [pass, step, cursor, w = &writer] {
            pass->cursor = cursor;
            pass->removed += step.removed;
            if (step.done) {
                answer_quietly(pass->done, result<std::size_t>(pass->removed));
            } else {
                w->post(prune_step_op(pass));
            }
        };
    };
    op.fail = [pass](boost::system::error_code error) {
        answer_quietly(pass->done, result<std::size_t>(error));
    };
    return op;
}

}  // namespace

void post_prune_pass(Writer& writer, TimePoint now, std::function<void(result<std::size_t>)> done) {
    auto pass = std::make_shared<PrunePass>();
    pass->now = now;
    pass->done = std::move(done);
    writer.post(prune_step_op(std::move(pass)));
}

}  // namespace hookrelay::store::sqlite
