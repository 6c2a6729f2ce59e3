// The claims of a store call whose caller may stop waiting for the answer (store_timeout). Its
// handler reports the claim ids an answer brings (answered()); the caller that gave up calls
// abandon(). Whichever comes second gets the ids back, to give back to the store: no claim is
// both used and given back, and none is left leased with nobody working on it. Thread-safe (the
// answer comes on the store's thread).
#pragma once

#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace hookrelay {

class LateAnswer {
  public:
    /// The claims an answer brought: empty while the caller may still take them, all of them
    /// once it has given up.
    std::vector<std::string> answered(std::vector<std::string> ids) {
        std::lock_guard lock(mutex_);
        if (abandoned_) return ids;
        taken_ = std::move(ids);
        return {};
    }

    /// The caller gave up: the claims of an answer that came before it knew, to give back.
    std::vector<std::string> abandon() {
        std::lock_guard lock(mutex_);
        abandoned_ = true;
        return std::exchange(taken_, {});
    }

  private:
    std::mutex mutex_;
    bool abandoned_ = false;
    std::vector<std::string> taken_;
};

}  // namespace hookrelay
