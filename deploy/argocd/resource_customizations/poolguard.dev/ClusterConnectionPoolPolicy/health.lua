-- Argo CD health of poolguard's ConnectionPoolPolicy, ClusterConnectionPoolPolicy and ClusterConnectionBudget:
-- one script for the three kinds (a budget has only WithinBudget, UsageHealthy and Ready, and no spec.suspend).
-- The mapping and why: docs/gitops.md, "Argo CD health". It uses no Lua string library, which a check set in
-- argocd-cm does not get.
local hs = {}
local generation = obj.metadata.generation

if obj.spec ~= nil and obj.spec.suspend == true then
  hs.status = "Suspended"
  hs.message = "spec.suspend is true: poolguard writes and checks nothing"
  return hs
end

local function find(conditionType)
  if obj.status == nil or obj.status.conditions == nil then
    return nil
  end
  for _, c in ipairs(obj.status.conditions) do
    if c.type == conditionType then
      return c
    end
  end
  return nil
end

local function behind(observed)
  return observed == nil or (generation ~= nil and observed < generation)
end

local function report(status, c)
  hs.status = status
  hs.message = (c.reason or "") .. ": " .. (c.message or "")
  return hs
end

local ready = find("Ready")
if obj.status == nil or behind(obj.status.observedGeneration) or ready == nil or behind(ready.observedGeneration) then
  hs.status = "Progressing"
  hs.message = "waiting for poolguard to observe generation " .. tostring(generation)
  return hs
end

local accepted = find("Accepted")
local applied = find("Applied")
local budget = find("WithinBudget")
local usage = find("UsageHealthy")
local appliedReason = applied ~= nil and applied.status == "False" and applied.reason or nil

-- What the manifest asks for cannot be done: an invalid or conflicting policy, a write that fails, a budget that
-- does not fit.
if accepted ~= nil and accepted.status == "False" then
  return report("Degraded", accepted)
end
-- poolguard writes Reconciling (True) only while every blocker is one it is still working on (a write waiting or
-- retried, max_connections still to come from the server): progress, not a failure.
local reconciling = find("Reconciling")
if reconciling ~= nil and reconciling.status == "True" then
  return report("Progressing", reconciling)
end
if appliedReason ~= nil and appliedReason ~= "Pending" and appliedReason ~= "Drifted" then
  return report("Degraded", applied)
end
if budget ~= nil and budget.status == "False" then
  return report("Degraded", budget)
end
if appliedReason == "Pending" then
  return report("Progressing", applied)
end
if ready.status == "True" then
  return report("Healthy", ready)
end
-- Reported by design, or about the applications' live sessions rather than the manifest: Healthy, with the finding.
if usage ~= nil and usage.status == "False" then
  return report("Healthy", usage)
end
if appliedReason == "Drifted" then
  return report("Healthy", applied)
end
if budget ~= nil and budget.reason == "MaxConnectionsUnknown" then
  return report("Healthy", budget)
end
return report("Degraded", ready)
