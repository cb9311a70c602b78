//! Resource usage statistics from cgroups (`docker stats`). Issue 5.
