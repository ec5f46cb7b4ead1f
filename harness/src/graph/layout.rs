//! Where nodes, edges and their labels go: layers left to right, and the checks that no
//! edge crosses a node or a label.

use std::collections::BTreeMap;

use super::model::{Graph, Node};

impl Graph {
    /// Layers by longest path from a source (a cycle is cut at the node count), each edge
    /// spanning several layers routed through a slot in every layer between (a dummy
    /// node, so it never passes over a node), layers ordered by barycentre sweeps, and
    /// each node on the median row of its predecessors (a chain stays on one row).
    /// Edges leave and enter nodes horizontally, so a node's labels below it are never
    /// crossed; an edge's label sits above its longest horizontal run, or on its slope.
    pub fn place(&self) -> Placed {
        let mut nodes: Vec<Node> = Vec::new();
        for e in &self.edges {
            for n in [&e.source, &e.dest] {
                if !nodes.contains(n) {
                    nodes.push(n.clone());
                }
            }
        }
        nodes.sort();
        let index = |n: &Node| nodes.iter().position(|m| m == n).unwrap_or(0);
        let count = nodes.len();
        // Back edges: those closing a cycle in a depth-first search from the sources (Kafka
        // Connect writes and reads its own topics); they are left out of the ranking and
        // drawn leftwards.
        let edge_ends: Vec<(usize, usize)> = self
            .edges
            .iter()
            .map(|e| (index(&e.source), index(&e.dest)))
            .collect();
        let mut back = vec![false; edge_ends.len()];
        {
            fn visit(n: usize, ends: &[(usize, usize)], state: &mut [u8], back: &mut [bool]) {
                state[n] = 1;
                for (k, &(s, d)) in ends.iter().enumerate() {
                    if s != n {
                        continue;
                    }
                    match state[d] {
                        0 => visit(d, ends, state, back),
                        1 => back[k] = true,
                        _ => {}
                    }
                }
                state[n] = 2;
            }
            let mut state = vec![0u8; count];
            let sources: Vec<usize> = (0..count)
                .filter(|n| !edge_ends.iter().any(|&(_, d)| d == *n))
                .chain(0..count)
                .collect();
            for n in sources {
                if state[n] == 0 {
                    visit(n, &edge_ends, &mut state, &mut back);
                }
            }
        }
        let mut rank = vec![0usize; count];
        for _ in 0..count {
            let mut changed = false;
            for (k, &(s, d)) in edge_ends.iter().enumerate() {
                if !back[k] && rank[s] + 1 > rank[d] {
                    rank[d] = rank[s] + 1;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        // Chains of slots: real nodes, then one dummy per layer an edge passes.
        let mut ranks = rank.clone();
        let mut chains: Vec<Vec<usize>> = Vec::new();
        for e in &self.edges {
            let (s, d) = (index(&e.source), index(&e.dest));
            let mut chain = vec![s];
            if rank[d] > rank[s] {
                for r in rank[s] + 1..rank[d] {
                    ranks.push(r);
                    chain.push(ranks.len() - 1);
                }
            }
            chain.push(d);
            chains.push(chain);
        }
        let slots = ranks.len();
        let mut preds: Vec<Vec<usize>> = vec![Vec::new(); slots];
        let mut succs: Vec<Vec<usize>> = vec![Vec::new(); slots];
        for chain in &chains {
            for w in chain.windows(2) {
                if ranks[w[1]] > ranks[w[0]] {
                    preds[w[1]].push(w[0]);
                    succs[w[0]].push(w[1]);
                }
            }
        }
        let layers_n = ranks.iter().max().map_or(0, |m| m + 1);
        let mut layers: Vec<Vec<usize>> = vec![Vec::new(); layers_n];
        for (slot, r) in ranks.iter().enumerate() {
            layers[*r].push(slot);
        }
        let mut order = vec![0.0f64; slots];
        let renumber = |layers: &Vec<Vec<usize>>, order: &mut Vec<f64>| {
            for layer in layers {
                for (i, s) in layer.iter().enumerate() {
                    order[*s] = i as f64;
                }
            }
        };
        renumber(&layers, &mut order);
        for _ in 0..4 {
            for (down, r) in (1..layers_n)
                .map(|r| (true, r))
                .chain((0..layers_n.saturating_sub(1)).rev().map(|r| (false, r)))
            {
                let mut keyed: Vec<(f64, usize)> = layers[r]
                    .iter()
                    .map(|&s| {
                        let near = if down { &preds[s] } else { &succs[s] };
                        let key = if near.is_empty() {
                            order[s]
                        } else {
                            near.iter().map(|n| order[*n]).sum::<f64>() / near.len() as f64
                        };
                        (key, s)
                    })
                    .collect();
                keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
                layers[r] = keyed.into_iter().map(|(_, s)| s).collect();
                renumber(&layers, &mut order);
            }
        }
        // Rows: the median of the predecessors' rows, below the previous slot of the layer.
        let mut row = vec![0usize; slots];
        for layer in &layers {
            let mut next = 0usize;
            for &s in layer {
                let mut above: Vec<usize> = preds[s].iter().map(|p| row[*p]).collect();
                above.sort_unstable();
                let want = above
                    .get(above.len().saturating_sub(1) / 2)
                    .copied()
                    .unwrap_or(0);
                row[s] = want.max(next);
                next = row[s] + 1;
            }
        }
        let at = |s: usize| {
            (
                MARGIN_X + ranks[s] as f64 * COLUMN,
                MARGIN_Y + row[s] as f64 * ROW,
            )
        };
        let mut placed = Placed::default();
        for (i, n) in nodes.iter().enumerate() {
            placed.nodes.insert(n.clone(), at(i));
        }
        let rows = row.iter().max().map_or(1, |m| m + 1);
        let bottom = MARGIN_Y + (rows as f64 - 0.4) * ROW;
        for chain in &chains {
            let mut pts: Vec<(f64, f64)> = Vec::new();
            let mut push = |p: (f64, f64)| {
                if pts.last() != Some(&p) {
                    pts.push(p);
                }
            };
            for w in chain.windows(2) {
                let ((xa, ya), (xb, yb)) = (at(w[0]), at(w[1]));
                let start = if w[0] < count { xa + RADIUS } else { xa };
                let end = if w[1] < count { xb - RADIUS } else { xb };
                if ranks[w[1]] + 1 == ranks[w[0]] {
                    // A cycle's edge back to the layer before: leftwards, below the edge
                    // the other way.
                    // Its change of row next to the target, where the edges out of it
                    // change theirs: the run by the source keeps room for labels.
                    let (ya, yb) = (ya + BACK, yb + BACK);
                    push((xa - RADIUS, ya));
                    if ya != yb {
                        push((xb + RUN + SLOPE, ya));
                        push((xb + RUN, yb));
                    }
                    push((xb + RADIUS, yb));
                } else if ranks[w[1]] <= ranks[w[0]] {
                    // Any other edge back: round below the picture.
                    push((xa + RADIUS, ya));
                    push((xa + RUN, ya));
                    push((xa + RUN, bottom));
                    push((xb - RUN, bottom));
                    push((xb - RUN, yb));
                    push((xb - RADIUS, yb));
                } else if ya == yb {
                    push((start, ya));
                    push((end, yb));
                } else {
                    // Out past the node's name, a steep slope, then a long run in: the
                    // label fits on the run.
                    push((start, ya));
                    push((xa + RUN, ya));
                    push((xa + RUN + SLOPE, yb));
                    push((end, yb));
                }
            }
            placed.edges.push(pts);
        }
        // Labels: for each edge, the first free spot among candidates on its segments
        // (longest first; above, then below the line; centred, then towards either end): one
        // no other edge crosses and that overlaps no node and no label placed before.
        let nodes_boxes = node_boxes(&placed);
        for (i, e) in self.edges.iter().enumerate() {
            let text = self.edge_label(e);
            let width = text_width(&text, LABEL_SIZE);
            let pts = &placed.edges[i];
            let mut segments: Vec<((f64, f64), (f64, f64))> =
                pts.windows(2).map(|w| (w[0], w[1])).collect();
            segments.sort_by(|x, y| seg_len(y).total_cmp(&seg_len(x)));
            let mut candidates = Vec::new();
            for (a, b) in &segments {
                for f in [0.5, 0.65, 0.35, 0.8, 0.2] {
                    let (x, y) = (a.0 + (b.0 - a.0) * f, a.1 + (b.1 - a.1) * f);
                    candidates.push((x, y - 8.0));
                    candidates.push((x, y + LABEL_SIZE + 4.0));
                }
            }
            // What a spot would break: edges crossing it, nodes and labels under it.
            let conflicts = |&(x, y): &(f64, f64)| {
                let bx = label_box(x, y, width);
                let crossed = placed
                    .edges
                    .iter()
                    .enumerate()
                    .filter(|(j, other)| {
                        *j != i && other.windows(2).any(|w| segment_hits(w[0], w[1], bx))
                    })
                    .count();
                crossed
                    + nodes_boxes
                        .iter()
                        .filter(|(_, nb)| overlap(bx, *nb))
                        .count()
                    + placed
                        .labels
                        .iter()
                        .filter(|(_, lx, ly, lw)| overlap(bx, label_box(*lx, *ly, *lw)))
                        .count()
            };
            // The first free spot, else the least bad.
            let (x, y) = candidates
                .iter()
                .map(|c| (conflicts(c), *c))
                .min_by_key(|(n, _)| *n)
                .map_or((0.0, 0.0), |(_, c)| c);
            placed.labels.push((text, x, y, width));
        }
        placed.width = MARGIN_X * 2.0 + (layers_n.max(1) - 1) as f64 * COLUMN;
        placed.height = MARGIN_Y + (rows as f64 - 1.0) * ROW + 80.0;
        placed
    }

    /// What a picture would get wrong: an edge crossing a node (its shape or its labels)
    /// or another edge's label, labels overlapping nodes or each other. Widths are
    /// estimated here; the browser test measures the drawn page.
    pub fn layout_problems(&self) -> Vec<String> {
        let p = self.place();
        let boxes = node_boxes(&p);
        let label_box = |(_, x, y, w): &(String, f64, f64, f64)| label_box(*x, *y, *w);
        let mut problems = Vec::new();
        for (i, pts) in p.edges.iter().enumerate() {
            let e = &self.edges[i];
            let name = format!("edge {} -> {}", e.source.id(), e.dest.id());
            for w in pts.windows(2) {
                for (what, b) in &boxes {
                    if segment_hits(w[0], w[1], *b) {
                        problems.push(format!("{name} crosses {what}"));
                    }
                }
                for (j, l) in p.labels.iter().enumerate() {
                    if j != i && segment_hits(w[0], w[1], label_box(l)) {
                        problems.push(format!("{name} crosses the label {:?}", l.0));
                    }
                }
            }
        }
        for (i, l) in p.labels.iter().enumerate() {
            let a = label_box(l);
            for (what, b) in &boxes {
                if overlap(a, *b) {
                    problems.push(format!("label {:?} overlaps {what}", l.0));
                }
            }
            for m in &p.labels[i + 1..] {
                if overlap(a, label_box(m)) {
                    problems.push(format!("labels {:?} and {:?} overlap", l.0, m.0));
                }
            }
        }
        problems.sort();
        problems.dedup();
        problems
    }
}

/// Where [`Graph::place`] puts things: node centres, each edge's polyline (in the order of
/// `Graph::edges`) and its label (text, centre x, baseline y, estimated width).
#[derive(Clone, Debug, Default)]
pub struct Placed {
    pub nodes: BTreeMap<Node, (f64, f64)>,
    pub edges: Vec<Vec<(f64, f64)>>,
    pub labels: Vec<(String, f64, f64, f64)>,
    pub width: f64,
    pub height: f64,
}

/// Layer spacing, row spacing, margins, where edges start from a node's centre, and the
/// horizontal run before an edge turns (past the widest node name's half).
pub(super) const COLUMN: f64 = 340.0;
pub(super) const ROW: f64 = 120.0;
pub(super) const MARGIN_X: f64 = 100.0;
pub(super) const MARGIN_Y: f64 = 60.0;
pub(super) const RADIUS: f64 = 27.0;
pub(super) const RUN: f64 = 80.0;
/// The horizontal extent of an edge's change of row, and how far below its row an edge
/// back runs.
pub(super) const SLOPE: f64 = 50.0;
pub(super) const BACK: f64 = 10.0;
pub(super) const LABEL_SIZE: f64 = 12.0;
pub(super) const NAME_SIZE: f64 = 12.0;

/// A generous estimate of a sans-serif text's width (the browser test measures it).
pub(super) fn text_width(text: &str, size: f64) -> f64 {
    text.chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '-' | ' ' | '/') {
                0.58
            } else if c.is_ascii() {
                0.7
            } else {
                1.25
            }
        })
        .sum::<f64>()
        * size
}

/// The boxes of every node's shape and of its name and namespace below it.
pub(super) fn node_boxes(p: &Placed) -> Vec<(String, [f64; 4])> {
    let mut boxes = Vec::new();
    for (n, (x, y)) in &p.nodes {
        boxes.push((
            format!("node {}", n.id()),
            [x - 25.0, y - 25.0, x + 25.0, y + 25.0],
        ));
        let w = text_width(&n.name, NAME_SIZE).max(text_width(&n.namespace, NAME_SIZE));
        boxes.push((
            format!("the name of {}", n.id()),
            [x - w / 2.0, y + 30.0, x + w / 2.0, y + 60.0],
        ));
    }
    boxes
}

/// The box of an edge label centred at `x` with its baseline at `y`.
pub(super) fn label_box(x: f64, y: f64, width: f64) -> [f64; 4] {
    [x - width / 2.0, y - LABEL_SIZE, x + width / 2.0, y + 3.0]
}

pub(super) fn seg_len(s: &((f64, f64), (f64, f64))) -> f64 {
    let (a, b) = s;
    ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt()
}

pub(super) fn overlap(a: [f64; 4], b: [f64; 4]) -> bool {
    a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3]
}

/// Whether segment `a`-`b` passes through the inside of box `[x0, y0, x1, y1]`
/// (Liang-Barsky clipping; touching an edge of the box does not count).
pub fn segment_hits(a: (f64, f64), b: (f64, f64), r: [f64; 4]) -> bool {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - r[0]),
        (dx, r[2] - a.0),
        (-dy, a.1 - r[1]),
        (dy, r[3] - a.1),
    ] {
        if p == 0.0 {
            if q <= 0.0 {
                return false;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    t1 - t0 > 1e-6
}
