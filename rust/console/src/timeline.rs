//! (being written) The timeline (Gantt) of node and attempt durations.
