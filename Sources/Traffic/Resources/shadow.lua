-- The shadow stage inside nginx: the new colour's answers compared with the live ones on live
-- traffic, before any user sees the new colour. The rendered configuration runs this file as the
-- body of a function in init_by_lua_block, after Resources/traffic.lua and Resources/interleave.lua,
-- and keeps the table it returns.
--
-- When the split in force has a `shadow COLOUR PERCENT EXPERIMENT` line (see Resources/traffic.lua;
-- COLOUR is a backend at weight 0), PERCENT % of the GET /recommend/USER requests, drawn per
-- request, are also sent to COLOUR, after the live answer has been sent:
--
--   * the body filter keeps a copy of the live answer (at most 64 KiB);
--   * the log phase, which runs once the client has its answer, starts a timer (`ngx.timer.at`)
--     that asks COLOUR for the same request over a cosocket (marked `X-Orchestrate-Shadow: 1` and
--     `X-Orchestrate-Interleaved: 1`, so the colour leaves it out of its engagement counts) and
--     compares both lists: overlap@k and rank-biased overlap (p = 0.9, extrapolated, Webber et al.
--     2010), errors and latency of each. Nothing of it reaches the client, and nothing the client
--     waits for depends on it: a slow or dead shadow colour costs timers, never live latency. At
--     most MAX_PENDING comparisons run at once per worker; a sampled request beyond that is counted
--     as `dropped`, never queued. When the colour refuses a connection, the worker takes it for down
--     for DOWN_SECONDS: a request sampled meanwhile is counted as an error and `skipped`, without
--     the copy, the timer or the connect, so that a dead colour costs live traffic next to nothing.
--
-- Memory is bounded: the shared dict `orchestrate_shadow` holds counters, a histogram of RBO, the
-- latency histograms of both colours, how often each movie was recommended by each colour (at most
-- as many as fit; `full` counts those that did not), and the last MAX_SAMPLES pairs of lists. The
-- controller reads them on the control socket (GET /shadow); a new experiment starts from nothing.
local M = {}

local DICT = "orchestrate_shadow"
local MAX_BODY = 65536
local MAX_ITEMS = 100
local MAX_PENDING = 64
local MAX_SAMPLES = 100
local TIMEOUT_MS = 2000
local P = 0.9
local COUNTERS = { "sampled", "compared", "errors", "timeouts", "skipped", "dropped", "live_errors", "full" }
local DOWN_SECONDS = 1
-- Latency buckets: bucket b holds latencies in [1.1^(b-1), 1.1^b) ms (bucket 0 below 1 ms).
local LATENCY_BASE = math.log(1.1)
local MAX_LATENCY_BUCKET = 200

local pending = 0
-- This worker's last refused connection: the experiment and until when its colour is taken for down.
local down = { experiment = nil, until_time = 0 }

-- How many ids `a` and `b` share.
local function shared_count(a, b)
    local in_b, count = {}, 0
    for _, item in ipairs(b) do
        in_b[item] = true
    end
    local seen = {}
    for _, item in ipairs(a) do
        if in_b[item] and not seen[item] then
            count = count + 1
        end
        seen[item] = true
    end
    return count
end

-- overlap@k: the share of the k positions (the longer list's length) whose movies both lists
-- hold; 1 when both are empty.
function M.overlap(a, b)
    local k = math.max(#a, #b)
    if k == 0 then
        return 1
    end
    return shared_count(a, b) / k
end

-- Rank-biased overlap of two rankings, extrapolated to infinite depth (Webber, Moffat, Zobel 2010,
-- equation 32, for lists of different lengths): 1 for the same ranking, 0 for disjoint ones, and
-- agreement at the top weighs most (p = 0.9: the first 10 positions carry about 86 % of it).
-- 1 when both are empty, 0 when one is.
function M.rbo(a, b, p)
    p = p or P
    local short, long = a, b
    if #short > #long then
        short, long = b, a
    end
    local s, l = #short, #long
    if l == 0 then
        return 1
    end
    if s == 0 then
        return 0
    end
    local seen_short, seen_long = {}, {}
    local overlap = 0
    local sum = 0
    local overlap_at_s = 0
    for d = 1, l do
        local x = long[d]
        if d <= s then
            local y = short[d]
            if x == y then
                if not seen_short[x] and not seen_long[x] then
                    overlap = overlap + 1
                end
            else
                if seen_short[x] then
                    overlap = overlap + 1
                end
                if seen_long[y] then
                    overlap = overlap + 1
                end
            end
            seen_short[y] = true
            seen_long[x] = true
            sum = sum + (overlap / d) * p ^ d
            if d == s then
                overlap_at_s = overlap
            end
        else
            if seen_short[x] and not seen_long[x] then
                overlap = overlap + 1
            end
            seen_long[x] = true
            sum = sum + (overlap / d) * p ^ d + overlap_at_s * (d - s) / (s * d) * p ^ d
        end
    end
    return (1 - p) / p * sum + ((overlap - overlap_at_s) / l + overlap_at_s / s) * p ^ l
end

-- The list without its later repetitions (a ranking names a movie once).
function M.distinct(items)
    local seen, out = {}, {}
    for _, item in ipairs(items) do
        if not seen[item] then
            seen[item] = true
            out[#out + 1] = item
        end
    end
    return out
end

-- The bucket of a latency in milliseconds.
function M.latency_bucket(ms)
    if ms < 1 then
        return 0
    end
    return math.min(MAX_LATENCY_BUCKET, math.floor(math.log(ms) / LATENCY_BASE) + 1)
end

-- The ids of an answer: a JSON object with `items`, or ids separated by commas; nil when it is
-- neither or holds more than MAX_ITEMS.
function M.items(body, json)
    if type(body) ~= "string" then
        return nil
    end
    if json then
        local value = orchestrate_interleave.decode_json(body)
        if type(value) ~= "table" or type(value.items) ~= "table" then
            return nil
        end
        local items = {}
        for index, item in ipairs(value.items) do
            if type(item) ~= "string" or index > MAX_ITEMS then
                return nil
            end
            items[index] = item
        end
        return items
    end
    local items = {}
    for item in body:gmatch("[^,\n]+") do
        if #items >= MAX_ITEMS then
            return nil
        end
        items[#items + 1] = item
    end
    return items
end

-- The dict of the split's experiment: a new experiment starts from nothing.
local function experiment_state(shadow)
    local state = ngx.shared[DICT]
    if state:get("experiment") ~= shadow.experiment then
        state:flush_all()
        state:flush_expired()
        for _, counter in ipairs(COUNTERS) do
            state:set(counter, 0)
        end
        state:set("rbo_sum", 0)
        state:set("overlap_sum", 0)
        state:set("samples", 0)
        state:set("experiment", shadow.experiment)
    end
    return state
end

-- An id as the report lists it: no spaces, commas or control characters.
local function printable(item)
    return (item:gsub("[%c%s,%%]", function(character)
        return string.format("%%%02X", character:byte())
    end))
end

-- Reads one HTTP/1.1 answer from `sock`: status, whether it is JSON, body (nil when unreadable).
local function read_answer(sock)
    local line, err = sock:receive("*l")
    if not line then
        return nil, err
    end
    local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
    if not status then
        return nil, "not HTTP"
    end
    local length, chunked, json, close = nil, false, false, false
    while true do
        local header
        header, err = sock:receive("*l")
        if not header then
            return nil, err
        end
        if header == "" then
            break
        end
        local name, value = header:match("^([^:]+):%s*(.-)%s*$")
        if name then
            name = name:lower()
            if name == "content-length" then
                length = tonumber(value)
            elseif name == "transfer-encoding" and value:lower():find("chunked", 1, true) then
                chunked = true
            elseif name == "content-type" and value:find("json", 1, true) then
                json = true
            elseif name == "connection" and value:lower() == "close" then
                close = true
            end
        end
    end
    local body
    if chunked then
        local parts, total = {}, 0
        while true do
            local size_line
            size_line, err = sock:receive("*l")
            if not size_line then
                return nil, err
            end
            local size = tonumber(size_line:match("^(%x+)"), 16)
            if not size then
                return nil, "bad chunk"
            end
            if size == 0 then
                sock:receive("*l")
                break
            end
            total = total + size
            if total > MAX_BODY then
                return nil, "answer too large"
            end
            local part
            part, err = sock:receive(size)
            if not part then
                return nil, err
            end
            parts[#parts + 1] = part
            sock:receive("*l")
        end
        body = table.concat(parts)
    elseif length then
        if length > MAX_BODY then
            return nil, "answer too large"
        end
        body, err = sock:receive(length)
        if not body then
            return nil, err
        end
    else
        return nil, "no content length"
    end
    return { status = status, json = json, body = body, close = close }
end

-- Asks one peer of the shadow colour for `uri` once; the answer, or nil, why, and whether the
-- connection came from the pool (a colour may have closed an idle one meanwhile).
local function ask_once(peer, uri)
    local sock = ngx.socket.tcp()
    sock:settimeout(TIMEOUT_MS)
    local ok, err = sock:connect(peer.host, peer.port)
    if not ok then
        return nil, err, false
    end
    local reused = (sock:getreusedtimes() or 0) > 0
    local request = "GET " .. uri .. " HTTP/1.1\r\nHost: shadow\r\nAccept: application/json\r\n"
        .. "X-Orchestrate-Shadow: 1\r\nX-Orchestrate-Interleaved: 1\r\nConnection: keep-alive\r\n\r\n"
    ok, err = sock:send(request)
    if not ok then
        sock:close()
        return nil, err, reused
    end
    local answer
    answer, err = read_answer(sock)
    if not answer then
        sock:close()
        return nil, err, reused
    end
    if answer.close then
        sock:close()
    else
        sock:setkeepalive(30000, 32)
    end
    return answer
end

-- Asks one peer of the shadow colour for `uri`: once more on a new connection when a pooled one
-- failed without a timeout (closed by the colour while idle), never after a timeout.
local function ask(peer, uri)
    local answer, err, reused = ask_once(peer, uri)
    if not answer and reused and err ~= "timeout" then
        answer, err = ask_once(peer, uri)
    end
    return answer, err
end

local function add_float(state, key, value)
    -- incr takes floats: the sums stay in the dict.
    state:incr(key, value, 0)
end

-- Counts how often each colour recommended each movie (for coverage and concentration).
local function count_items(state, side, items)
    for _, item in ipairs(items) do
        local ok, err = state:incr("item:" .. side .. ":" .. item, 1, 0)
        if not ok and err == "no memory" then
            state:incr("full", 1, 0)
            return
        end
    end
end

-- Asks the shadow colour, compares, counts.
local function compare_once(job)
    local state = ngx.shared[DICT]
    ngx.update_time()
    local started = ngx.now()
    local answer, err = ask(job.peer, job.uri)
    ngx.update_time()
    local elapsed_ms = (ngx.now() - started) * 1000
    if state:get("experiment") ~= job.experiment then
        return
    end
    if not answer then
        state:incr("errors", 1, 0)
        if err == "timeout" then
            state:incr("timeouts", 1, 0)
        elseif err == "connection refused" then
            down.experiment, down.until_time = job.experiment, ngx.now() + DOWN_SECONDS
        end
        return
    end
    local items = answer.status == 200 and M.items(answer.body, answer.json)
    if not items then
        state:incr("errors", 1, 0)
        return
    end
    items = M.distinct(items)
    local rbo = M.rbo(job.live, items)
    local overlap = M.overlap(job.live, items)
    state:incr("compared", 1, 0)
    add_float(state, "rbo_sum", rbo)
    add_float(state, "overlap_sum", overlap)
    state:incr("rbo:" .. math.min(9, math.floor(rbo * 10)), 1, 0)
    state:incr("latency:live:" .. M.latency_bucket(job.live_ms), 1, 0)
    state:incr("latency:new:" .. M.latency_bucket(elapsed_ms), 1, 0)
    count_items(state, "live", job.live)
    count_items(state, "new", items)
    local index = state:incr("samples", 1, 0)
    local live_ids, new_ids = {}, {}
    for position, item in ipairs(job.live) do
        live_ids[position] = printable(item)
    end
    for position, item in ipairs(items) do
        new_ids[position] = printable(item)
    end
    state:set("sample:" .. ((index - 1) % MAX_SAMPLES), string.format("%s %.4f %.4f %.1f %.1f %s %s", job.user, rbo,
        overlap, job.live_ms, elapsed_ms, table.concat(live_ids, ","), table.concat(new_ids, ",")))
end

-- The timer: one comparison; whatever happens in it, it no longer counts as running.
local function compare(premature, job)
    if not premature then
        local ok, err = pcall(compare_once, job)
        if not ok then
            ngx.log(ngx.ERR, "orchestrate: shadow comparison failed: ", err)
        end
    end
    pending = pending - 1
end

-- The peers of the shadow colour.
local function shadow_peer(split)
    for _, backend in ipairs(split.backends) do
        if backend.color == split.shadow.color then
            return backend.peers[math.random(1, #backend.peers)]
        end
    end
    return nil
end

-- access_by_lua (after the interleaving): draws whether this live /recommend request is shadowed.
function M.access()
    local split = orchestrate_traffic.current()
    local shadow = split and split.shadow
    if not shadow or ngx.req.get_method() ~= "GET" then
        return
    end
    local user = ngx.var.uri:match("^/recommend/([A-Za-z0-9._+-]+)$")
    if not user or #user > 64 or math.random(1, 100) > shadow.percent then
        return
    end
    if down.experiment == shadow.experiment and ngx.now() < down.until_time then
        local state = experiment_state(shadow)
        state:incr("sampled", 1, 0)
        state:incr("errors", 1, 0)
        state:incr("skipped", 1, 0)
        return
    end
    if pending >= MAX_PENDING then
        -- Shed before any work: the live answer is not even copied.
        local state = experiment_state(shadow)
        state:incr("sampled", 1, 0)
        state:incr("dropped", 1, 0)
        return
    end
    ngx.ctx.orchestrate_shadow = { user = user, split = split, parts = {}, size = 0 }
end

-- body_filter_by_lua: a copy of the live answer of a shadowed request.
function M.body_filter()
    local job = ngx.ctx.orchestrate_shadow
    if not job or job.overflow then
        return
    end
    local chunk = ngx.arg[1]
    if chunk and #chunk > 0 then
        job.size = job.size + #chunk
        if job.size > MAX_BODY then
            job.overflow = true
            job.parts = nil
            return
        end
        job.parts[#job.parts + 1] = chunk
    end
end

-- log_by_lua: the client has its answer; the comparison starts beside, on a timer.
function M.log()
    local job = ngx.ctx.orchestrate_shadow
    if not job then
        return
    end
    local shadow = job.split.shadow
    local state = experiment_state(shadow)
    state:incr("sampled", 1, 0)
    if pending >= MAX_PENDING then
        -- Shed before any work: the live answer is not even read.
        state:incr("dropped", 1, 0)
        return
    end
    local content_type = ngx.var.sent_http_content_type or ""
    local live = ngx.status == 200 and not job.overflow
        and M.items(table.concat(job.parts), content_type:find("json", 1, true) ~= nil)
    live = live and M.distinct(live)
    if not live then
        -- Nothing to compare with: the live colour's own failure, not the shadow's.
        state:incr("live_errors", 1, 0)
        return
    end
    local peer = shadow_peer(job.split)
    if not peer then
        state:incr("errors", 1, 0)
        return
    end
    -- The last try's time when nginx tried several peers ("0.002, 0.004").
    local live_ms = (tonumber((ngx.var.upstream_response_time or ""):match("([%d.]+)$")) or 0) * 1000
    local uri = ngx.var.uri .. (ngx.var.args and ("?" .. ngx.var.args) or "")
    pending = pending + 1
    local ok, err = ngx.timer.at(0, compare, {
        peer = peer, uri = uri, user = job.user, live = live, live_ms = live_ms, experiment = shadow.experiment,
    })
    if not ok then
        pending = pending - 1
        state:incr("dropped", 1, 0)
        ngx.log(ngx.WARN, "orchestrate: no shadow comparison: ", err)
    end
end

-- content_by_lua on the control socket: GET /shadow answers what the experiment in force counted,
-- one fact a line: `experiment ID`, `colour NAME`, counters (`compared 120`), the sums
-- (`rbo_sum 97.5`), the non-empty buckets (`rbo BUCKET COUNT`, `latency live|new BUCKET COUNT`),
-- per colour the movies recommended and distinct (`items live TOTAL DISTINCT TOP10`, TOP10 the
-- recommendations of its 10 most recommended movies), and the kept pairs
-- (`sample USER RBO OVERLAP LIVE_MS NEW_MS LIVE_IDS NEW_IDS`).
function M.report()
    local state = ngx.shared[DICT]
    local experiment = state:get("experiment")
    local split = orchestrate_traffic.current()
    local shadow = split and split.shadow
    local lines = { "experiment " .. (experiment or "none") }
    if experiment and shadow and shadow.experiment == experiment then
        lines[#lines + 1] = "colour " .. shadow.color
        for _, counter in ipairs(COUNTERS) do
            lines[#lines + 1] = counter .. " " .. (state:get(counter) or 0)
        end
        lines[#lines + 1] = string.format("rbo_sum %.6f", state:get("rbo_sum") or 0)
        lines[#lines + 1] = string.format("overlap_sum %.6f", state:get("overlap_sum") or 0)
        for bucket = 0, 9 do
            local count = state:get("rbo:" .. bucket)
            if count then
                lines[#lines + 1] = "rbo " .. bucket .. " " .. count
            end
        end
        local counts = { live = {}, new = {} }
        for _, key in ipairs(state:get_keys(0)) do
            local side, bucket = key:match("^latency:(%a+):(%d+)$")
            if side then
                lines[#lines + 1] = "latency " .. side .. " " .. bucket .. " " .. (state:get(key) or 0)
            else
                local colour_side = key:match("^item:(%a+):")
                if colour_side and counts[colour_side] then
                    local list = counts[colour_side]
                    list[#list + 1] = state:get(key) or 0
                end
            end
        end
        for _, side in ipairs({ "live", "new" }) do
            local list = counts[side]
            table.sort(list, function(x, y) return x > y end)
            local total, top = 0, 0
            for index, count in ipairs(list) do
                total = total + count
                if index <= 10 then
                    top = top + count
                end
            end
            lines[#lines + 1] = "items " .. side .. " " .. total .. " " .. #list .. " " .. top
        end
        local kept = math.min(state:get("samples") or 0, MAX_SAMPLES)
        for index = 0, kept - 1 do
            local sample = state:get("sample:" .. index)
            if sample then
                lines[#lines + 1] = "sample " .. sample
            end
        end
    end
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(table.concat(lines, "\n") .. "\n")
    return ngx.exit(200)
end

return M
