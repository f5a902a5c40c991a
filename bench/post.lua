-- wrk script shared by bench/run.sh (sandbox ceiling) and bench/sandbox-load.sh: one valid
-- PURCHASE per request, with an id unique across threads and requests. The scripts pass the API
-- key and the event timestamp (Unix ms, one minute in the past so it stays valid for the whole
-- run) in MCM_API_KEY and POST_TS.
local counter = 0
local next_tid = 0
local ts = os.getenv("POST_TS")
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-API-Key"] = os.getenv("MCM_API_KEY")
function request()
  counter = counter + 1
  local body = '{"id":"wrk-' .. tid .. '-' .. counter .. '","event_type":"PURCHASE","timestamp":"' .. ts .. '",'
    .. '"channel_type":"SITE","user_id":"u-' .. counter .. '",'
    .. '"items":[{"id":"sku-1","price":{"currency":"USD","amount":50},"quantity":2}],'
    .. '"revenue":{"currency":"USD","amount":100}}'
  return wrk.format(nil, nil, nil, body)
end
