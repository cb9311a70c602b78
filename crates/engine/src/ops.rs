//! Operations on live containers: pause/unpause, rename, update, top. Issue 5.
