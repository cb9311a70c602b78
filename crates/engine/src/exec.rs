//! Exec instances: create, start (attached or detached), inspect, resize. Issue 5.
