-- Team-draft interleaving inside nginx (Radlinski, Kurup, Joachims 2008; Chapelle, Joachims,
-- Radlinski, Yue 2012). The rendered configuration runs this file as the body of a function in
-- init_by_lua_block, after Resources/traffic.lua, and keeps the table it returns.
--
-- When the split in force has an `interleave` line (see Resources/traffic.lua), a sampled share of the
-- users (a hash of the split's seed and the user id, independent of the sticky split's hash):
--
--   * GET /recommend/USER is answered by both colours (two subrequests, each to its colour only,
--     with a short timeout) and the two lists are merged by team draft: while both lists have
--     movies not yet placed, the team with fewer picks (a coin flip when equal, seeded by the user
--     and the request id, so a draft can be replayed) places its best movie not yet placed; when
--     both teams would place the same movie at a round's start, it is placed for neither
--     (`neutral`: its events credit nobody). The team of every placed movie is remembered for the
--     credit window. When one colour fails or is slow, the other colour's list is answered alone;
--     when both fail, the request goes on to the sticky split as any other: an interleaved user
--     never sees a failure the split would not give.
--   * POST /events/USER credits each conversion (a watch, or a rating of 4 or more) of a placed
--     movie, once, to the colour whose team placed it, then goes on to the user's sticky colour
--     marked `X-Orchestrate-Interleaved: 1`.
--
-- Both colours see those requests with the same header and leave them out of their own
-- engagement counts, so the sampled users never bias the A/B comparison of everyone else.
--
-- Per user, the colour credited more often is preferred (a tie when equal and above zero); the
-- counts per experiment (one per traffic step) are answered on the control socket
-- (GET /interleaving) for the judge's sign test. Memory is bounded: placements live in a shared
-- dict with the credit window as TTL (the least recently used are dropped when it is full), and a
-- user who does not fit into the dict of users is not sampled (counted as `full`).
local M = {}

local STATE = "orchestrate_interleave"
local PLACEMENTS = "orchestrate_placements"
-- The largest list and event batch looked at.
local MAX_ITEMS = 100
local MAX_EVENTS = 10000
local COUNTERS = { "users", "merged", "credited", "ties", "full", "prefer:1", "prefer:2", "credits:1", "credits:2", "fallback:1", "fallback:2" }

-- A number from the first 32 bits of the MD5 of `text`: unlike a CRC (which is linear: the CRCs
-- of "s#0" and "s#1" have the same lowest bit), every bit depends on the whole text.
function M.hash(text)
    return tonumber(ngx.md5(text):sub(1, 8), 16)
end

-- The merged list of `a` and `b` (arrays of ids) by team draft, at most `length` long, and the team
-- (1 for `a`, 2 for `b`, 0 for neither) of each position. The coin of the n-th flip (from 0) is the
-- parity of `M.hash(seed .. "#" .. n)`: even lets `a` pick. A movie is placed once, whichever list
-- holds it; the draft ends when either list has nothing left to place, as in Chapelle et al.
-- A round (both teams with as many picks) whose two proposals are the same movie places it for
-- neither team: both rankings put it there, so an event on it tells nothing of which is better,
-- and crediting it to the coin's team (as the plain draft does) only adds a coin's noise to every
-- user's preference, most where the lists agree most (a candidate that differs from the live model
-- in a few places). Equal lists therefore credit nothing; the draft stays fair to both.
function M.team_draft(a, b, length, seed)
    local merged, teams, placed = {}, {}, {}
    local next_a, next_b, picks_a, picks_b, flips = 1, 1, 0, 0, 0
    while #merged < length do
        while next_a <= #a and placed[a[next_a]] do
            next_a = next_a + 1
        end
        while next_b <= #b and placed[b[next_b]] do
            next_b = next_b + 1
        end
        if next_a > #a or next_b > #b then
            break
        end
        local item
        if picks_a == picks_b and a[next_a] == b[next_b] then
            item = a[next_a]
            teams[#teams + 1] = 0
        else
            local a_picks
            if picks_a ~= picks_b then
                a_picks = picks_a < picks_b
            else
                a_picks = M.hash(seed .. "#" .. flips) % 2 == 0
                flips = flips + 1
            end
            if a_picks then
                item, picks_a = a[next_a], picks_a + 1
                teams[#teams + 1] = 1
            else
                item, picks_b = b[next_b], picks_b + 1
                teams[#teams + 1] = 2
            end
        end
        placed[item] = true
        merged[#merged + 1] = item
    end
    return merged, teams
end

-- A small JSON reader for the colours' answers and the events' bodies: objects, arrays, strings
-- (escapes included), numbers, true, false, null (ngx.null); nil for anything else or nesting
-- deeper than 8.
function M.decode_json(text)
    if type(text) ~= "string" then
        return nil
    end
    local position, depth = 1, 0
    local escapes = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n", r = "\r", t = "\t" }
    local function fail()
        error("not json", 0)
    end
    local function skip()
        position = text:find("[^ \t\r\n]", position) or #text + 1
    end
    local function utf8(code)
        if code < 0x80 then
            return string.char(code)
        elseif code < 0x800 then
            return string.char(0xC0 + math.floor(code / 0x40), 0x80 + code % 0x40)
        end
        return string.char(0xE0 + math.floor(code / 0x1000), 0x80 + math.floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
    end
    local function read_string()
        position = position + 1
        local parts = {}
        while true do
            local stop = text:find('["\\]', position)
            if not stop then
                fail()
            end
            parts[#parts + 1] = text:sub(position, stop - 1)
            if text:sub(stop, stop) == '"' then
                position = stop + 1
                return table.concat(parts)
            end
            local code = text:sub(stop + 1, stop + 1)
            if code == "u" then
                local hex = text:sub(stop + 2, stop + 5)
                if not hex:match("^%x%x%x%x$") then
                    fail()
                end
                parts[#parts + 1] = utf8(tonumber(hex, 16))
                position = stop + 6
            elseif escapes[code] then
                parts[#parts + 1] = escapes[code]
                position = stop + 2
            else
                fail()
            end
        end
    end
    local read_value
    local function read_container(close, read_entry)
        depth = depth + 1
        if depth > 8 then
            fail()
        end
        position = position + 1
        skip()
        if text:sub(position, position) == close then
            position = position + 1
        else
            while true do
                read_entry()
                skip()
                local separator = text:sub(position, position)
                position = position + 1
                if separator == close then
                    break
                elseif separator ~= "," then
                    fail()
                end
            end
        end
        depth = depth - 1
    end
    function read_value()
        skip()
        local first = text:sub(position, position)
        if first == "{" then
            local object = {}
            read_container("}", function()
                skip()
                if text:sub(position, position) ~= '"' then
                    fail()
                end
                local key = read_string()
                skip()
                if text:sub(position, position) ~= ":" then
                    fail()
                end
                position = position + 1
                object[key] = read_value()
            end)
            return object
        elseif first == "[" then
            local array = {}
            read_container("]", function()
                array[#array + 1] = read_value()
            end)
            return array
        elseif first == '"' then
            return read_string()
        end
        for word, value in pairs({ ["true"] = true, ["false"] = false, ["null"] = ngx.null }) do
            if text:sub(position, position + #word - 1) == word then
                position = position + #word
                return value
            end
        end
        local number = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", position)
        if not number or not tonumber(number) then
            fail()
        end
        position = position + #number
        return tonumber(number)
    end
    local ok, value = pcall(function()
        local value = read_value()
        skip()
        if position <= #text then
            fail()
        end
        return value
    end)
    if ok then
        return value
    end
    return nil
end

-- A JSON string literal.
local function json_string(text)
    return '"' .. text:gsub('[%c"\\]', function(character)
        return string.format("\\u%04x", character:byte())
    end) .. '"'
end

-- Whether the user is in the interleaved sample of the split.
function M.sampled(interleave, user)
    return M.hash(interleave.seed .. ":" .. user) % 100 < interleave.percent
end

-- The dicts of the split's experiment: a new experiment (a new traffic step) starts from nothing.
local function experiment_state(interleave)
    local state = ngx.shared[STATE]
    if state:get("experiment") ~= interleave.experiment then
        state:flush_all()
        state:flush_expired()
        local placements = ngx.shared[PLACEMENTS]
        placements:flush_all()
        placements:flush_expired()
        for _, counter in ipairs(COUNTERS) do
            state:set(counter, 0)
        end
        state:set("experiment", interleave.experiment)
    end
    return state
end

-- The user's preference from their credits: 1 or 2 (the colour credited more), "ties", or nil
-- (nothing credited yet).
local function preference(first, second)
    if first > second then
        return "prefer:1"
    elseif second > first then
        return "prefer:2"
    elseif first > 0 then
        return "ties"
    end
    return nil
end

-- Credits one conversion of `user` to team `team` (1 or 2) and moves the user between the
-- preference counters.
function M.credit(state, user, team)
    local key = "user:" .. user
    local first, second = (state:get(key) or "0 0"):match("^(%d+) (%d+)$")
    first, second = tonumber(first) or 0, tonumber(second) or 0
    local before = preference(first, second)
    if team == 1 then
        first = first + 1
    else
        second = second + 1
    end
    local after = preference(first, second)
    -- safe_set never evicts another user (whose preference is counted) or a counter to make room:
    -- a credit that does not fit is not counted.
    if not state:safe_set(key, first .. " " .. second) then
        state:incr("full", 1, 0)
        return
    end
    state:incr("credits:" .. team, 1, 0)
    state:incr("credited", 1, 0)
    if before ~= after then
        if before then
            state:incr(before, -1, 0)
        end
        state:incr(after, 1, 0)
    end
end

-- Admits a user into the experiment (true), or not when the dict of users is full.
local function admit(state, user)
    local ok, err = state:safe_add("user:" .. user, "0 0")
    if ok then
        state:incr("users", 1, 0)
        return true
    end
    if err == "exists" then
        return true
    end
    state:incr("full", 1, 0)
    return false
end

-- A colour's answer as a list of ids, or nil when it did not answer 200 with a list.
local function answered_list(response)
    if not response or response.status ~= 200 or response.truncated then
        return nil
    end
    local body = M.decode_json(response.body)
    if type(body) ~= "table" or type(body.items) ~= "table" then
        return nil
    end
    local items = {}
    for index, item in ipairs(body.items) do
        if type(item) ~= "string" or index > MAX_ITEMS then
            return nil
        end
        items[index] = item
    end
    local version
    for name, value in pairs(response.header) do
        if name:lower() == "x-model-version" and type(value) == "string" then
            version = value
        end
    end
    return { items = items, personalised = body.personalised == true, version = version }
end

local function respond(user, items, color, version, personalised, teams)
    local wants_json = (ngx.var.http_accept or ""):find("application/json", 1, true) ~= nil
    ngx.status = 200
    ngx.header["X-Model-Color"] = color
    ngx.header["X-Model-Version"] = version
    if teams then
        ngx.header["X-Interleaving-Teams"] = table.concat(teams, ",")
        ngx.header["X-Interleaving-Seed"] = user .. ":" .. ngx.var.request_id
    end
    if wants_json then
        local quoted = {}
        for index, item in ipairs(items) do
            quoted[index] = json_string(item)
        end
        local fields = { '"color":' .. json_string(color) }
        if teams then
            -- The seed and the team of each position: the draft can be replayed and checked.
            local quoted_teams = {}
            for index, team in ipairs(teams) do
                quoted_teams[index] = json_string(team)
            end
            fields[#fields + 1] = '"interleaving":{"seed":' .. json_string(user .. ":" .. ngx.var.request_id)
                .. ',"teams":[' .. table.concat(quoted_teams, ",") .. "]}"
        end
        fields[#fields + 1] = '"items":[' .. table.concat(quoted, ",") .. "]"
        fields[#fields + 1] = '"model_version":' .. json_string(version or "")
        fields[#fields + 1] = '"personalised":' .. tostring(personalised)
        fields[#fields + 1] = '"user":' .. json_string(user)
        ngx.header["Content-Type"] = "application/json"
        ngx.print("{" .. table.concat(fields, ",") .. "}")
    else
        ngx.header["Content-Type"] = "text/plain; charset=utf-8"
        ngx.print(table.concat(items, ","))
    end
    return ngx.exit(200)
end

local function recommend(interleave, user)
    local state = experiment_state(interleave)
    if not admit(state, user) then
        return
    end
    -- Left out of the A/B counts whatever happens next, also when the request goes on to the split.
    ngx.var.orchestrate_interleaved = "1"
    local colors = interleave.colors
    local uri = "/_orchestrate_interleave" .. ngx.var.uri
    local first, second = ngx.location.capture_multi({
        { uri, { args = ngx.var.args, ctx = { orchestrate_colour = colors[1] } } },
        { uri, { args = ngx.var.args, ctx = { orchestrate_colour = colors[2] } } },
    })
    local lists = { answered_list(first), answered_list(second) }
    if not lists[1] or not lists[2] then
        local index = lists[1] and 1 or (lists[2] and 2 or nil)
        if not index then
            ngx.log(ngx.WARN, "orchestrate: neither colour answered an interleaved list; the request goes to the split")
            return
        end
        state:incr("fallback:" .. index, 1, 0)
        local list = lists[index]
        -- One colour's list alone compares nothing: its movies credit nobody, whatever team placed
        -- them in an earlier list of this user (under load, a colour that times out would otherwise
        -- have its rival's list credited to the teams of lists the user is not looking at).
        local placements = ngx.shared[PLACEMENTS]
        for _, item in ipairs(list.items) do
            placements:delete(user .. "\t" .. item)
        end
        return respond(user, list.items, colors[index], list.version, list.personalised, nil)
    end
    local length = math.max(#lists[1].items, #lists[2].items)
    local merged, teams = M.team_draft(lists[1].items, lists[2].items, length, user .. ":" .. ngx.var.request_id)
    local placements = ngx.shared[PLACEMENTS]
    local names = {}
    for index, item in ipairs(merged) do
        -- A movie placed again is remembered with its latest team (a movie of neither team
        -- forgets an earlier one); when the dict is full the placements used longest ago are
        -- dropped (their events then credit nobody).
        if teams[index] == 0 then
            placements:delete(user .. "\t" .. item)
            names[index] = "neutral"
        else
            placements:set(user .. "\t" .. item, teams[index], interleave.window)
            names[index] = colors[teams[index]]
        end
    end
    state:incr("merged", 1, 0)
    local version = colors[1] .. "=" .. (lists[1].version or "") .. "," .. colors[2] .. "=" .. (lists[2].version or "")
    return respond(user, merged, "interleaved", version, lists[1].personalised and lists[2].personalised, names)
end

local function read_body()
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if body then
        return body
    end
    local path = ngx.req.get_body_file()
    if not path then
        return nil
    end
    local file = io.open(path, "rb")
    if not file then
        return nil
    end
    body = file:read(1048576)
    file:close()
    return body
end

local function credit_events(interleave, user)
    local state = experiment_state(interleave)
    ngx.var.orchestrate_interleaved = "1"
    local batch = M.decode_json(read_body())
    if type(batch) ~= "table" or type(batch.events) ~= "table" then
        -- The colour answers what is wrong with it.
        return
    end
    local placements = ngx.shared[PLACEMENTS]
    for index, event in ipairs(batch.events) do
        if index > MAX_EVENTS then
            break
        end
        if type(event) == "table" and type(event.movie) == "string" and (event.user == nil or event.user == user)
            and (event.kind == "watch" or (event.kind == "rate" and type(event.rating) == "number" and event.rating >= 4)) then
            local key = user .. "\t" .. event.movie
            local team = placements:get(key)
            if team then
                placements:delete(key)
                M.credit(state, user, team)
            end
        end
    end
end

-- access_by_lua of the public location: interleaves the sampled users' lists and credits their
-- events; every other request goes on to the split untouched.
function M.access()
    local split = orchestrate_traffic.current()
    local interleave = split and split.interleave
    if not interleave then
        return
    end
    local method = ngx.req.get_method()
    local uri = ngx.var.uri
    local user = uri:match("^/recommend/([A-Za-z0-9._+-]+)$")
    if user and method == "GET" and #user <= 64 and M.sampled(interleave, user) then
        return recommend(interleave, user)
    end
    user = uri:match("^/events/([A-Za-z0-9._+-]+)$")
    if user and method == "POST" and #user <= 64 and M.sampled(interleave, user) then
        return credit_events(interleave, user)
    end
end

-- content_by_lua on the control socket: GET /interleaving answers the counts of the experiment
-- in force, one per line (`experiment ID`, then `colour NAME` twice, then `NAME VALUE`, where
-- `prefer`, `credits` and `fallback` name their colour: `prefer blue 12`).
function M.report()
    local state = ngx.shared[STATE]
    local experiment = state:get("experiment")
    local split = orchestrate_traffic.current()
    local colors = split and split.interleave and split.interleave.experiment == experiment and split.interleave.colors
    local lines = { "experiment " .. (experiment or "none") }
    if experiment and colors then
        lines[#lines + 1] = "colour " .. colors[1]
        lines[#lines + 1] = "colour " .. colors[2]
        for _, counter in ipairs(COUNTERS) do
            local name, team = counter:match("^(%a+):(%d)$")
            local label = name and (name .. " " .. colors[tonumber(team)]) or counter
            lines[#lines + 1] = label .. " " .. (state:get(counter) or 0)
        end
    end
    ngx.header["Content-Type"] = "text/plain"
    ngx.print(table.concat(lines, "\n") .. "\n")
    return ngx.exit(200)
end

return M
