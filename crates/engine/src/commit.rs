//! `docker commit`: a new image from a container's upper layer. Issue 5.
