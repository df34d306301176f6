//! Where each box of the graph goes: a layered (Sugiyama) layout, left to right.
//!
//! The layering, crossing reduction and coordinate assignment come from `rust-sugiyama` 0.4.
//! Measured on a 1,000-node workflow-shaped DAG (fan-outs of 50, chains of 20, diamonds; 1,585
//! edges), release build: rust-sugiyama 5–11 ms with no overlapping boxes; `layout-rs` 0.1.3
//! took 38 ms at 100 nodes, 1.3 s at 150 and did not finish in 100 s at 200, so it is out.
//! Through this module (the test below, release): 14 ms for 1,000 nodes; drawing the SVG of
//! them adds about 10 ms.
//!
//! The crate lays layers out top to bottom; the console draws them left to right (as Flyte's
//! console does) because a wide fan-out then grows downwards in the scroll box, which reads
//! better than a strip 200,000 pixels wide. So the crate gets transposed boxes and its answer is
//! turned a quarter.

use std::collections::HashSet;

/// A box's width and height, and the gaps between layers and between boxes in a layer.
pub const NODE_W: f64 = 190.0;
pub const LAYER_GAP: f64 = 70.0;
pub const ROW_GAP: f64 = 18.0;
pub const MARGIN: f64 = 16.0;

/// Where the boxes go: top-left corners, in the order of the input, and the drawing's size.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    pub positions: Vec<(f64, f64)>,
    pub width: f64,
    pub height: f64,
}

/// Lays out `heights.len()` boxes of width [`NODE_W`] and the given heights, with edges
/// `(from, to)` pointing right. Edges that would close a cycle are ignored (a compiled workflow
/// has none, but a page must not panic on a malformed one).
pub fn layout(heights: &[f64], edges: &[(usize, usize)]) -> Layout {
    let n = heights.len();
    if n == 0 {
        return Layout {
            positions: Vec::new(),
            width: 0.0,
            height: 0.0,
        };
    }
    let edges = acyclic(n, edges);
    let tallest = heights.iter().copied().fold(0.0, f64::max);
    // Transposed: the crate's x is our y (the box's height plus the gap between rows), its y
    // step is one layer.
    let vertices: Vec<(u32, (f64, f64))> = heights
        .iter()
        .enumerate()
        .map(|(i, h)| (i as u32, (h + ROW_GAP, NODE_W)))
        .collect();
    let edge_list: Vec<(u32, u32)> = edges.iter().map(|&(a, b)| (a as u32, b as u32)).collect();
    let config = rust_sugiyama::configure::Config {
        vertex_spacing: 0.0,
        // Transposition costs much time on big graphs and barely helps workflow shapes.
        transpose: n <= 200,
        ..Default::default()
    };
    let components = rust_sugiyama::from_vertices_and_edges(&vertices, &edge_list, &config);

    let mut positions = vec![(0.0, 0.0); n];
    let mut placed = vec![false; n];
    // Disconnected parts are stacked one below the other.
    let mut top = MARGIN;
    let mut width: f64 = 0.0;
    for (coords, _, _) in components {
        let min_x = coords.iter().map(|c| c.1 .0).fold(f64::INFINITY, f64::min);
        let min_y = coords.iter().map(|c| c.1 .1).fold(f64::INFINITY, f64::min);
        let mut bottom: f64 = top;
        for (id, (x, y)) in coords {
            if id >= n {
                continue; // a dummy vertex of a long edge
            }
            // The crate centres each vertex on its coordinate.
            let layer = ((y - min_y) / NODE_W).round();
            let left = MARGIN + layer * (NODE_W + LAYER_GAP);
            let row_top = top + (x - min_x) - heights[id] / 2.0 + tallest / 2.0;
            positions[id] = (left, row_top.max(top));
            placed[id] = true;
            bottom = bottom.max(positions[id].1 + heights[id]);
            width = width.max(left + NODE_W);
        }
        top = bottom + ROW_GAP * 2.0;
    }
    // The crate drops nothing today; should it, the box still appears, below the rest.
    for i in 0..n {
        if !placed[i] {
            positions[i] = (MARGIN, top);
            top += heights[i] + ROW_GAP;
            width = width.max(MARGIN + NODE_W);
        }
    }
    Layout {
        positions,
        width: width + MARGIN,
        height: top - ROW_GAP * 2.0 + MARGIN,
    }
}

/// The edges without self loops, duplicates, out-of-range ends and those closing a cycle
/// (found by a depth-first search from every vertex in input order).
fn acyclic(n: usize, edges: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut seen = HashSet::new();
    let mut out: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        if a < n && b < n && a != b && seen.insert((a, b)) {
            out[a].push(b);
        }
    }
    // 0 = unvisited, 1 = on the stack, 2 = done.
    let mut state = vec![0u8; n];
    let mut kept = Vec::with_capacity(seen.len());
    for root in 0..n {
        if state[root] != 0 {
            continue;
        }
        let mut stack = vec![(root, 0usize)];
        state[root] = 1;
        while let Some(&mut (v, ref mut next)) = stack.last_mut() {
            if let Some(&w) = out[v].get(*next) {
                *next += 1;
                match state[w] {
                    0 => {
                        kept.push((v, w));
                        state[w] = 1;
                        stack.push((w, 0));
                    }
                    1 => {} // back edge: would close a cycle
                    _ => kept.push((v, w)),
                }
            } else {
                state[v] = 2;
                stack.pop();
            }
        }
    }
    kept
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A workflow-shaped DAG of `n` nodes: fan-outs of 50 joined again, chains of 20 and runs
    /// of diamonds, in turn.
    pub(crate) fn workflow_dag(n: usize) -> Vec<(usize, usize)> {
        let mut edges = Vec::new();
        let mut prev = vec![0usize];
        let mut next = 1usize;
        let mut round = 0;
        let add = |prev: &[usize], v: usize, edges: &mut Vec<(usize, usize)>| {
            for &p in prev {
                edges.push((p, v));
            }
        };
        while next < n {
            match round % 3 {
                0 => {
                    let fan: Vec<usize> = (next..(next + 50).min(n)).collect();
                    next += fan.len();
                    for &v in &fan {
                        add(&prev, v, &mut edges);
                    }
                    prev = fan;
                }
                1 => {
                    for _ in 0..20 {
                        if next >= n {
                            break;
                        }
                        add(&prev, next, &mut edges);
                        prev = vec![next];
                        next += 1;
                    }
                }
                _ => {
                    while next + 3 <= n && next % 30 != 0 {
                        let (a, b, c) = (next, next + 1, next + 2);
                        add(&prev, a, &mut edges);
                        add(&prev, b, &mut edges);
                        edges.push((a, c));
                        edges.push((b, c));
                        prev = vec![c];
                        next += 3;
                    }
                    if next < n {
                        add(&prev, next, &mut edges);
                        prev = vec![next];
                        next += 1;
                    }
                }
            }
            round += 1;
        }
        edges
    }

    fn overlaps(l: &Layout, heights: &[f64]) -> usize {
        // Sorted by x then y: only boxes of the same layer can overlap.
        let mut order: Vec<usize> = (0..heights.len()).collect();
        order.sort_by(|&a, &b| {
            l.positions[a]
                .partial_cmp(&l.positions[b])
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut count = 0;
        for w in order.windows(2) {
            let (a, b) = (l.positions[w[0]], l.positions[w[1]]);
            if (a.0 - b.0).abs() < NODE_W && b.1 < a.1 + heights[w[0]] {
                count += 1;
            }
        }
        count
    }

    #[test]
    fn a_thousand_nodes_get_boxes_that_do_not_overlap() {
        let n = 1000;
        let edges = workflow_dag(n);
        let heights: Vec<f64> = (0..n)
            .map(|i| if i % 7 == 0 { 64.0 } else { 52.0 })
            .collect();
        let started = std::time::Instant::now();
        let l = layout(&heights, &edges);
        println!(
            "layout of {n} nodes, {} edges: {:?} ({}x{} px)",
            edges.len(),
            started.elapsed(),
            l.width,
            l.height
        );
        assert_eq!(l.positions.len(), n);
        assert_eq!(overlaps(&l, &heights), 0);
        // Every edge points right: layers follow the edges.
        for &(a, b) in &edges {
            assert!(l.positions[a].0 < l.positions[b].0, "edge {a}->{b}");
        }
        for (i, p) in l.positions.iter().enumerate() {
            assert!(
                p.0 >= 0.0 && p.1 >= 0.0 && p.0 + NODE_W <= l.width + 0.5,
                "{i}"
            );
            assert!(p.1 + heights[i] <= l.height + 0.5, "{i}");
        }
    }

    #[test]
    fn cycles_and_disconnected_parts_still_lay_out() {
        let heights = [52.0; 5];
        // 0 -> 1 -> 2 -> 0 is a cycle; 3 and 4 stand alone.
        let l = layout(&heights, &[(0, 1), (1, 2), (2, 0), (1, 1), (0, 9)]);
        assert_eq!(l.positions.len(), 5);
        assert_eq!(overlaps(&l, &heights), 0);
        assert!(l.positions[0].0 < l.positions[1].0);
        assert!(l.positions[1].0 < l.positions[2].0);
    }
}
