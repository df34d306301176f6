//! (being written) An attempt's logs in a page, streamed while it runs.
