//! Attaching to a container's stdio through its shim (stdin, output stream, resize, detach keys). Issue 5.
