// The fixture of the store contract suite: one fresh store per test from the backend under
// test, with up to two instances on it ("a" and "b", as two daemons sharing the store).
#pragma once

#include "store/contract/backend.hpp"
#include "store/store_test_support.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace hookrelay::store::contract {

using namespace hookrelay::store::test;

class StoreContract : public ::testing::TestWithParam<BackendParam> {
  protected:
    static constexpr const char* k_instance_a = "instance-a";
    static constexpr const char* k_instance_b = "instance-b";

    StoreContract() {
        // Nothing is removed behind a test's back; a test that prunes calls prune().
        config_.store.prune_interval = std::chrono::milliseconds(0);
    }

    void SetUp() override { backend_ = GetParam().make(); }

    void TearDown() override {
        for (auto& weak : opened_) {
            if (auto store = weak.lock()) store->close();
        }
        opened_.clear();
        a_.reset();
        b_.reset();
        backend_.reset();
    }

    /// The first instance, opened on first use.
    Store& a() {
        if (!a_) a_ = open(k_instance_a);
        return *a_;
    }
    /// A second instance on the same store, opened on first use. With a backend that takes
    /// deliveries through one instance (Capabilities::one_intake_per_file), what a() answered
    /// is in the file first: a read through a() waits for everything a() answered before it.
    Store& b() {
        if (a_ && backend_->capabilities().one_intake_per_file) (void)backlog(*a_);
        if (!b_) b_ = open(k_instance_b);
        return *b_;
    }

    /// Another instance (or `id` again after it was closed) on this test's store; it is closed
    /// at the end of the test unless it is gone by then.
    std::shared_ptr<Store> open(const std::string& id) {
        // As in b(): what a() answered is in the file before another instance looks.
        if (a_ && backend_->capabilities().one_intake_per_file) (void)backlog(*a_);
        auto store = backend_->open(config_, id);
        opened_.push_back(store);
        return store;
    }

    /// Closes instance a; the next a() opens it again.
    void reopen_a() {
        if (a_) a_->close();
        a_.reset();
    }

    Capabilities capabilities() const { return backend_->capabilities(); }

    Config config_;
    const TimePoint base_ = now_ms();

  private:
    std::unique_ptr<Backend> backend_;
    std::vector<std::weak_ptr<Store>> opened_;
    std::shared_ptr<Store> a_;
    std::shared_ptr<Store> b_;
};

}  // namespace hookrelay::store::contract
