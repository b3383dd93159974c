//! "Did you mean …?" for misspelt keys and values.

/// The candidate closest to `word` (ignoring case, `_` and `-`), if it is
/// close enough to be a plausible typo: at most a third of the word's length
/// in edits (two for short words), never more than three.
pub(crate) fn closest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    let folded = fold(word);
    let limit = (folded.chars().count() / 3).clamp(2, 3);
    candidates
        .iter()
        .map(|c| (distance(&folded, &fold(c)), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn fold(s: &str) -> String {
    s.chars()
        .filter(|c| *c != '_' && *c != '-')
        .flat_map(char::to_lowercase)
        .collect()
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for (j, cb) in b.iter().enumerate() {
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = row.get(j).copied().unwrap_or(usize::MAX);
            let best = (diagonal + usize::from(ca != *cb))
                .min(above.saturating_add(1))
                .min(left.saturating_add(1));
            diagonal = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = best;
            }
        }
    }
    row.last().copied().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_plausible_typos_only() {
        let keys = [
            "name",
            "role",
            "kubernetesVersion",
            "podCidr",
            "serviceCidr",
            "metallbPool",
        ];
        assert_eq!(closest("podCIDR", &keys), Some("podCidr"));
        assert_eq!(closest("pod_cidr", &keys), Some("podCidr"));
        assert_eq!(
            closest("kubernetesVerison", &keys),
            Some("kubernetesVersion")
        );
        assert_eq!(closest("nmae", &keys), Some("name"));
        assert_eq!(closest("zones", &keys), None);
        assert_eq!(closest("", &keys), None);
    }

    #[test]
    fn distance_is_levenshtein() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("abc", "abc"), 0);
    }
}
