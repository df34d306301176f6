//! Node id rules.

/// The sentinel node whose outputs are the workflow inputs.
pub const START_NODE_ID: &str = "start-node";
/// The sentinel node whose inputs are the workflow outputs.
pub const END_NODE_ID: &str = "end-node";

/// A DNS-1123 label: 1-63 lowercase letters, digits or '-', starting and ending alphanumeric.
/// Node ids become parts of Kubernetes object names and storage paths, hence the rule.
pub fn is_dns1123_label(s: &str) -> bool {
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = s.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(&first), Some(&last)) => {
            bytes.len() <= 63
                && alnum(first)
                && alnum(last)
                && bytes.iter().all(|&c| alnum(c) || c == b'-')
        }
        _ => false,
    }
}

/// Then-nodes of a branch are renamed `<branchId>-<thenId>` so ids stay unique in the workflow.
pub fn branch_node_id(branch_id: &str, then_id: &str) -> String {
    format!("{branch_id}-{then_id}")
}
