-- wrk script: POSTs one GitHub push payload with a precomputed signature and a unique delivery id
-- per request (so hookrelay's deduplication never short-circuits). Configured by environment:
-- BODY_FILE, SIGNATURE, TARGET_PATH, and RUN_ID (optional): a prefix that keeps the ids of wrk
-- processes running at once apart (Lua's math.random is not seeded, so two wrk processes started
-- in the same second would otherwise send the same ids).
-- IDS (optional): `counter` (the default) numbers each thread's requests, so the ids of one run
-- sort in the order they are sent, as GitHub's time-based (version 1) UUIDs mostly do; `random`
-- sends random (version 4) UUIDs, as GitLab, Gitea and Bitbucket do, which land anywhere in the
-- store's index of delivery ids.
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local signature = os.getenv("SIGNATURE")
local path = os.getenv("TARGET_PATH")
local prefix = os.getenv("RUN_ID") or ""
local random_ids = os.getenv("IDS") == "random"
local counter = 0

function setup(thread)
  thread:set("run_id", string.format("%s%d-%d", prefix, os.time(), math.random(1, 1000000000)))
  thread:set("seed", os.time() + math.random(1, 1000000000))
end

function init(args)
  if random_ids then math.randomseed(seed) end
end

local function next_id()
  counter = counter + 1
  if not random_ids then return run_id .. "-" .. counter end
  local r = math.random
  return string.format("%08x-%04x-4%03x-%04x-%04x%08x", r(0, 0xffffffff), r(0, 0xffff),
    r(0, 0xfff), 0x8000 + r(0, 0x3fff), r(0, 0xffff), r(0, 0xffffffff))
end

function request()
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = next_id(),
    ["X-Hub-Signature-256"] = signature,
  }, body)
end
