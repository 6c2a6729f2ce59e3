-- wrk script: POSTs one GitHub push payload with a precomputed signature and a unique delivery id
-- per request (so hookrelay's deduplication never short-circuits). Configured by environment:
-- BODY_FILE, SIGNATURE, TARGET_PATH, and RUN_ID (optional): a prefix that keeps the ids of wrk
-- processes running at once apart (Lua's math.random is not seeded, so two wrk processes started
-- in the same second would otherwise send the same ids).
local f = assert(io.open(os.getenv("BODY_FILE"), "rb"))
local body = f:read("*a")
f:close()
local signature = os.getenv("SIGNATURE")
local path = os.getenv("TARGET_PATH")
local prefix = os.getenv("RUN_ID") or ""
local counter = 0

function setup(thread)
  thread:set("run_id", string.format("%s%d-%d", prefix, os.time(), math.random(1, 1000000000)))
end

function request()
  counter = counter + 1
  return wrk.format("POST", path, {
    ["Content-Type"] = "application/json",
    ["X-GitHub-Event"] = "push",
    ["X-GitHub-Delivery"] = run_id .. "-" .. counter,
    ["X-Hub-Signature-256"] = signature,
  }, body)
end
