//! Test fixture shared by the decision and conformance tests: the seed
//! policy as version 1.1.0, which adds a purpose `credit_scoring` (identity
//! and names, use and transfer), lets banks receive data for it, gives the
//! backend and security need-to-know for it, and cites it in the text.

/// The policy file of version 1.1.0.
pub fn policy_1_1_text() -> String {
    include_str!("../ibusiness.toml")
        .replacen("version = \"1.0.0\"", "version = \"1.1.0\"", 1)
        .replacen(
            "[[purposes]]\nid = \"troubleshooting\"",
            "[[purposes]]\nid = \"credit_scoring\"\nclause = \"2\"\nkind = \"service\"\nname = { ru = \"Кредитный скоринг\", en = \"Credit scoring\" }\ncategories = [\"identity\", \"full_name\"]\noperations = [\"use\", \"transfer\"]\nretention = { months = 0, after = \"relationship_end\", basis = { ru = \"-\", en = \"-\" } }\n\n[[purposes]]\nid = \"troubleshooting\"",
            1,
        )
        .replacen(
            "purposes = [\"contract_performance\", \"fraud_prevention\"]",
            "purposes = [\"contract_performance\", \"fraud_prevention\", \"credit_scoring\"]",
            1,
        )
        .replacen(
            "{ purpose = \"marketing\", categories = [\"full_name\", \"contact\"] },\n  { purpose = \"subject_requests\"",
            "{ purpose = \"marketing\", categories = [\"full_name\", \"contact\"] },\n  { purpose = \"credit_scoring\", categories = [\"identity\", \"full_name\"] },\n  { purpose = \"subject_requests\"",
            1,
        )
        .replacen(
            "purpose = \"fraud_prevention\", categories = [\"identity\"",
            "purpose = \"credit_scoring\", categories = [\"identity\", \"full_name\"] },\n  { purpose = \"fraud_prevention\", categories = [\"identity\"",
            1,
        )
        .replacen(
            "purposes = [\"fraud_prevention\"]",
            "purposes = [\"fraud_prevention\", \"credit_scoring\"]",
            1,
        )
}
