-- wrk script for `make bench`'s writes (scripts/bench.py): POSTs with a JSON body and a token.
--
-- Environment: BENCH_WRITE_KIND ("status-changes" or "events"), BENCH_WRITE_IDS (negotiations
-- as id=status, comma-separated, each in_talks or suspended and the client's party taking
-- part), BENCH_TOKEN (the
-- API client's; none for the floor), BENCH_WRITE_PREFIX (the URL path before the id),
-- BENCH_OCCURRED_AT (an event's time).
--
-- Each wrk thread takes its own share of the negotiations and goes round them, so two
-- writes to one negotiation are never in flight together: a status change moves it
-- in_talks -> suspended -> in_talks ... (or from suspended first) and every move is legal
-- (a 409 would show as non-2xx).

local kind = os.getenv("BENCH_WRITE_KIND")
local prefix = os.getenv("BENCH_WRITE_PREFIX")
local token = os.getenv("BENCH_TOKEN") or ""
local occurred_at = os.getenv("BENCH_OCCURRED_AT") or "2026-01-01T00:00:00Z"
local threads = {}
local counter = 1

function setup(thread)
   thread:set("index", counter)
   table.insert(threads, thread)
   counter = counter + 1
end

function init(args)
   local all = {}
   for id, status in string.gmatch(os.getenv("BENCH_WRITE_IDS"), "([^,=]+)=([^,]+)") do
      table.insert(all, {id, status})
   end
   mine, moves, turn = {}, {}, 0
   local count = tonumber(os.getenv("BENCH_THREADS") or "2")
   for i, target in ipairs(all) do
      if (i - 1) % count == index - 1 then
         table.insert(mine, target[1])
         -- an even count of moves so far: the next one leaves the status it started in
         moves[target[1]] = (target[2] == "in_talks") and 0 or 1
      end
   end
   -- wrk asks the first thread for one request before the run, to check it, and never
   -- sends it: that one must not count as a move.
   checked = (index ~= 1)
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
   if token ~= "" then
      wrk.headers["Authorization"] = "Bearer " .. token
   end
end

function request()
   if not checked then
      checked = true
      return wrk.format("GET", "/")
   end
   turn = turn % #mine + 1
   local id = mine[turn]
   local body
   if kind == "status-changes" then
      local to = (moves[id] % 2 == 0) and "suspended" or "in_talks"
      moves[id] = moves[id] + 1
      body = '{"to_status": "' .. to .. '", "note": "bench"}'
   else
      body = '{"kind": "meeting", "occurred_at": "' .. occurred_at .. '", "summary": "bench"}'
   end
   return wrk.format(nil, prefix .. id .. "/" .. kind .. "/", nil, body)
end
