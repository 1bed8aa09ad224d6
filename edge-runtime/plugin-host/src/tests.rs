use super::{PluginError, check_ranking};

fn refused(order: &[u32], offered: usize) -> String {
    match check_ranking(order, offered) {
        Err(PluginError::InvalidAnswer(why)) => why,
        other => panic!("{order:?} of {offered} was not refused as invalid: {other:?}"),
    }
}

#[test]
fn a_ranking_may_leave_candidates_out_and_names_each_by_its_place() {
    assert_eq!(check_ranking(&[2, 0], 3).ok(), Some(vec![2, 0]));
    assert_eq!(check_ranking(&[], 0).ok(), Some(Vec::new()));
}

#[test]
fn a_ranking_that_is_empty_too_long_out_of_range_or_repeats_a_place_is_refused() {
    assert_eq!(refused(&[], 2), "empty ranking");
    assert_eq!(refused(&[0, 1, 2], 2), "3 stations ranked, 2 offered");
    assert_eq!(refused(&[2], 2), "candidate 2 ranked, 2 offered");
    assert_eq!(
        refused(&[u32::MAX], 2),
        "candidate 4294967295 ranked, 2 offered"
    );
    assert_eq!(refused(&[1, 1], 2), "candidate 1 ranked twice");
}
