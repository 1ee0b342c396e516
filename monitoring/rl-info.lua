-- The module's counters for redis_exporter's -script option.
--
-- redis_exporter reads `INFO ALL`, which (like plain `INFO`) leaves module sections out, so
-- none of the `rl_*` fields reach Prometheus without this script. The exporter EVALs it on
-- every scrape and wants a flat list of alternating names and values, both strings; each
-- numeric pair becomes the gauge `redis_script_values{key="<name>"}`.
--
-- `INFO rl` is the module's own section: a "# rl" header, then "rl_<field>:<integer>" lines
-- (see README.md, Monitoring). On a server without the module it is empty, and so is the
-- result: the exporter then exports nothing for the script and no error.
local out = {}
for name, value in string.gmatch(redis.call("INFO", "rl"), "(rl_[%w_]+):(%-?%d+)") do
    out[#out + 1] = name
    out[#out + 1] = value
end
return out
