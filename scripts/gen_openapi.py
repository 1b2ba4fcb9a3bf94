#!/usr/bin/env python3
"""Writes docs/openapi.json (the metrics and spend API) from the parameter table of
docs/metrics.md, so the two never disagree. A Rust test checks the result lists every
parameter and table the code accepts. Run after editing the table: python3 scripts/gen_openapi.py
"""

import json
import os
import re

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
doc = open(os.path.join(ROOT, "docs", "metrics.md"), encoding="utf-8").read()
params = {}
section = doc.split("## Query parameters", 1)[1].split("\n## ", 1)[0]
for line in section.splitlines():
    m = re.match(r"\| `([a-z_]+)`(?:, `([a-z_]+)`)?\s*\|\s*([^|]*?)\s*\|\s*(.*?)\s*\|$", line)
    if m:
        for name in (m.group(1), m.group(2)):
            if name:
                params[name] = (m.group(3).strip("`"), m.group(4))
params.pop("metric", None)
names = list(params)
enums = {
    "grain": ["day", "week", "month", "quarter", "year"],
    "churn_date": ["period_end", "cancellation"],
    "renewals": ["auto", "implicit", "explicit"],
    "discounts": ["apply", "ignore"],
    "cohort_kind": ["first_time", "recurring"],
    "mode": ["on", "on_or_after"],
    "window": ["calendar", "rolling"],
}
repeat = {"rate", "event", "return_event"}
integers = {"past_due_days", "smoothing_periods", "min_occurrences", "horizon"}
numbers = {"gross_margin", "churn_change"}


def param(n):
    default, desc = params[n]
    schema = {"type": "string"}
    if n in enums:
        schema = {"type": "string", "enum": enums[n]}
    elif n in integers:
        schema = {"type": "integer", "minimum": 0}
    elif n in numbers:
        schema = {"type": "number"}
    elif n in repeat:
        schema = {"type": "array", "items": {"type": "string"}}
    p = {"name": n, "in": "query", "required": False,
         "description": desc + (f" Default: {default}." if default else ""), "schema": schema}
    if n in repeat:
        p["style"], p["explode"] = "form", True
    return p


tables = ["subscriptions", "cohorts", "activity", "lifecycle", "stickiness", "transactions",
          "voice", "nps_breakdown", "verbatims", "referrals", "channels", "concentration", "what_if"]
error = {"description": "Error `{success: false, error: {message, code, type, link}}` (docs/errors.md).",
         "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
errors = {code: error for code in ("400", "401", "403", "404")}
qparams = [{"$ref": f"#/components/parameters/{n}"} for n in names]
context = {"workspace": {"type": "string"}, "as_of": {"type": "string", "format": "date-time"},
           "query": {"type": "object"}, "currency": {"type": "object"}, "customers": {"type": "integer"},
           "warnings": {"type": "array", "items": {"type": "string"}}}
spend_row = {"type": "object", "required": ["channel", "month", "amount", "currency"], "properties": {
    "channel": {"type": "string"}, "month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
    "amount": {"type": "number", "minimum": 0, "description": "Major units (1500.50)."},
    "currency": {"type": "string", "description": "ISO 4217"}}}
spec = {
    "openapi": "3.1.0",
    "info": {"title": "Tenure metrics API", "version": "0.1.0", "description":
             "Retention metrics and marketing spend. Every table, field and parameter is defined in "
             "docs/metrics.md (the same names as `tenure report` flags). Ingestion (Segment's HTTP "
             "Tracking API) and customers: docs/api.md. Money is in minor units of the reporting "
             "currency; rates are fractions; null means undefined."},
    "servers": [{"url": "http://127.0.0.1:7878"}],
    "security": [{"adminKey": []}],
    "paths": {
        "/v1/metrics": {"get": {
            "summary": "Several metrics tables at once", "operationId": "getMetrics",
            "parameters": [{"name": "metric", "in": "query", "schema": {"type": "string"},
                            "description": "Tables to compute, comma-separated. Default: all."}] + qparams,
            "responses": {"200": {"description": "The report context and one key per table asked for.",
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Report"}}}},
                          **errors}}},
        "/v1/metrics/{metric}": {"get": {
            "summary": "One metrics table", "operationId": "getMetric",
            "parameters": [{"name": "metric", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": tables}}] + qparams,
            "responses": {"200": {"description": "The table under `data`, with the report context.",
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MetricTable"}}}},
                          **errors}}},
        "/v1/metrics/clv": {"get": {
            "summary": "Customer-lifetime forecast: the models fitted on the workspace's own data and the sum of every customer's predictions",
            "operationId": "getClv",
            "description": "Orders: BG/NBD and Pareto/NBD fitted on every customer with an order (weeks), the one with the higher "
                           "log-likelihood kept, Gamma-Gamma for spend; totals of P(alive), expected orders in the next 52 weeks and "
                           "12-month CLV (1% a month, `lifetimes`' convention), overall and by acquisition channel. Subscriptions: "
                           "sBG on first monthly subscriptions, the retention curve, and Σ MRR × DERL. A part is null without "
                           "enough data (30 customers). Each total is the sum of the profiles' `predictions` (docs/clv.md).",
            "responses": {"200": {"description": "`{metric: \"clv\", workspace, as_of, data: {orders, subscriptions}}`",
                                  "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ClvForecast"}}}},
                          "401": error, "403": error}}},
        "/v1/spend": {
            "get": {"summary": "Stored marketing spend", "operationId": "listSpend",
                    "responses": {"200": {"description": "Spend rows", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Spend"}}}}}}},
                        "401": error, "403": error}},
            "put": {"summary": "Set spend per channel and month (replaces the same channel, month and currency); one bad row stores nothing.",
                    "operationId": "putSpend",
                    "requestBody": {"required": True, "content": {"application/json": {"schema": {
                        "type": "object", "required": ["spend"], "properties": {"spend": {"type": "array", "items": spend_row}}}}}},
                    "responses": {"200": {"description": "Stored", "content": {"application/json": {"schema": {
                        "type": "object", "properties": {"success": {"type": "boolean"}, "stored": {"type": "integer"}}}}}},
                        "400": error, "401": error, "403": error}}},
    },
    "components": {
        "securitySchemes": {"adminKey": {"type": "http", "scheme": "bearer", "description":
                                         "An admin key (`tenure keys create --kind admin`); Basic auth with the key as user name also works."}},
        "parameters": {n: param(n) for n in names},
        "schemas": {
            "Error": {"type": "object", "properties": {"success": {"const": False}, "error": {"type": "object", "properties": {
                "message": {"type": "string"}, "code": {"type": "string"}, "type": {"type": "string"}, "link": {"type": "string"}}}}},
            "Spend": {"type": "object", "properties": {"channel": {"type": "string"}, "month": {"type": "string"},
                                                       "amount": {"type": "integer", "description": "Minor units"}, "currency": {"type": "string"}}},
            "Report": {"type": "object", "properties": {**context, **{t: {"description": f"The `{t}` table (docs/metrics.md)."} for t in tables}}},
            "ClvForecast": {"type": "object", "properties": {
                "metric": {"const": "clv"}, "workspace": {"type": "string"}, "as_of": {"type": "string", "format": "date-time"},
                "data": {"type": "object", "properties": {
                    "orders": {"type": ["object", "null"], "properties": {
                        "model": {"type": "string", "enum": ["bgnbd", "pareto_nbd"]}, "time_unit": {"const": "week"},
                        "candidates": {"type": "array", "items": {"$ref": "#/components/schemas/ModelFit"}},
                        "spend_model": {"oneOf": [{"$ref": "#/components/schemas/ModelFit"}, {"type": "null"}]},
                        "currency": {"type": "string"}, "customers": {"type": "integer"},
                        "customers_probably_alive": {"type": "integer"}, "mean_probability_alive": {"type": "number"},
                        "expected_orders_next_52_weeks": {"type": "number"},
                        "predicted_clv_12_months": {"type": ["number", "null"], "description": "Major units of `currency`."},
                        "by_channel": {"type": "array", "items": {"type": "object", "properties": {
                            "channel": {"type": ["string", "null"]}, "customers": {"type": "integer"},
                            "mean_probability_alive": {"type": "number"}, "expected_orders_next_52_weeks": {"type": "number"},
                            "predicted_clv_12_months": {"type": ["number", "null"]}}}}}},
                    "subscriptions": {"type": ["object", "null"], "properties": {
                        "model": {"const": "sbg"}, "parameters": {"type": "object", "properties": {
                            "alpha": {"type": "number"}, "beta": {"type": "number"}}},
                        "fitted_on_subscribers": {"type": "integer"},
                        "retention_curve": {"type": "array", "items": {"type": "number"}, "description": "S(t), t = 0..12 months."},
                        "current_subscribers": {"type": "integer"}, "mean_expected_remaining_months": {"type": "number"},
                        "predicted_clv": {"type": "object", "additionalProperties": {"type": "number"},
                                          "description": "Per currency, major units."}}}}}}},
            "ModelFit": {"type": "object", "properties": {"model": {"type": "string"},
                                                          "parameters": {"type": "object", "additionalProperties": {"type": "number"}},
                                                          "log_likelihood": {"type": "number"}, "converged": {"type": "boolean"}}},
            "MetricTable": {"type": "object", "properties": {"metric": {"type": "string", "enum": tables}, **context, "data": {
                "description": "Per-period rows (most tables) or the table's object (cohorts, activity, concentration, what_if)."}}},
        },
    },
}
with open(os.path.join(ROOT, "docs", "openapi.json"), "w", encoding="utf-8") as f:
    f.write(json.dumps(spec, indent=2, ensure_ascii=False) + "\n")
print(f"docs/openapi.json: {len(names)} parameters, {len(tables)} tables")
