-- The request mix of one benches/load.sh workload, for wrk: which ECI call, with which
-- identity header (only ramgate reads it; nginx and the backend pass it on or ignore it).
--
--   wrk ... -s benches/load.lua URL -- <workload> <ids file> [principal]
--
-- Workloads (the same request bytes go to every target, so targets differ only in what
-- they do with them):
--   single    DescribeContainerLog on one container group whose metadata ramgate caches.
--   describe  DescribeContainerGroups by tags name=liumi, env=test: an allowed list whose
--             20 items ramgate checks one by one before answering.
--   empty     DescribeContainerGroups naming no group, by a user whose policies are all
--             group-scoped: ramgate answers an empty list without asking the backend.
--   miss      DescribeContainerLog over many ids in turn (run with a short [metadata]
--             ttl_ms, most lookups miss the cache and go to the backend first).
--   signed    `single`, signed (ACS3 or RPC v1, each with its own nonce): the requests are
--             read in turn from the file benches/sign_requests.py wrote, given in place of
--             the ids file. Past its end they start again, and the replays are refused:
--             the file is made long enough for the run.
--
-- Requests are prebuilt in init() (or by the signer): wrk then only cycles through them,
-- so the client's cost stays the same for every target.

local ACCOUNT = "1234567890123456"
local COMMON = "Version=2018-08-08&Format=JSON&RegionId=cn-hangzhou"

local requests = {}
local n = 0
local signed = nil

local function ids_from(path)
  local ids = {}
  local f = assert(io.open(path, "r"), "cannot open the ids file " .. tostring(path))
  for line in f:lines() do
    if line ~= "" then ids[#ids + 1] = line end
  end
  f:close()
  assert(#ids > 0, "no ids in " .. path)
  return ids
end

local function as(user)
  if user == "root" then return "acs:ram::" .. ACCOUNT .. ":root" end
  return "acs:ram::" .. ACCOUNT .. ":user/" .. user
end

function init(args)
  local workload, ids_file, user = args[1], args[2], args[3]
  if workload == "signed" then
    signed = assert(io.open(ids_file, "rb"), "cannot open the signed requests " .. tostring(ids_file))
    return
  end
  local ids = ids_from(ids_file)
  local function get(query, who)
    return wrk.format("GET", "/?" .. query .. "&" .. COMMON, { ["x-ramgate-principal"] = as(who) })
  end
  if workload == "single" then
    requests[1] = get("Action=DescribeContainerLog&ContainerGroupId=" .. ids[1], user or "liumi")
  elseif workload == "describe" then
    requests[1] = get("Action=DescribeContainerGroups&Tag.1.Key=name&Tag.1.Value=liumi"
      .. "&Tag.2.Key=env&Tag.2.Value=test", user or "liumi")
  elseif workload == "empty" then
    requests[1] = get("Action=DescribeContainerGroups", user or "test")
  elseif workload == "miss" then
    -- A fixed shuffle (a linear congruential walk over the ids), the same every run.
    local count, at = #ids, 1
    for i = 1, count do
      at = (at * 7919 + 13) % count + 1
      requests[i] = get("Action=DescribeContainerLog&ContainerGroupId=" .. ids[at], user or "liumi")
    end
  else
    error("unknown workload " .. tostring(workload) .. " (single, describe, empty, miss, signed)")
  end
end

local function next_signed()
  local length = signed:read("*n")
  if not length then
    signed:seek("set", 0)
    length = signed:read("*n")
  end
  signed:read(1)
  return signed:read(length)
end

function request()
  if signed then return next_signed() end
  n = n % #requests + 1
  return requests[n]
end
