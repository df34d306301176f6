//! (being written) The execution graph: the compiled workflow laid out and drawn as SVG, each
//! node coloured by its phase.
