//! Each report section mapped to the controls of NIST CSF 2.0, NIST SP 800-207 (the zero
//! trust tenets of its section 2.1) and the OWASP Non-Human Identity Top 10 (2025) it gives
//! evidence for. A mapping cites the events of its section; a section without events in the
//! period maps with no citation, and the page says so rather than claiming the control.

use super::{Cited, ComplianceReport, ControlMapping, Framework, Section};

/// (section, framework, control, its title, how the section supports it)
const TABLE: &[(Section, Framework, &str, &str, &str)] = &[
    (Section::Grants, Framework::NistCsf2, "PR.AA-05",
     "Access permissions, entitlements, and authorizations are defined in a policy, managed, enforced, and reviewed, and incorporate the principles of least privilege and separation of duties",
     "Every grant was decided by the policy set, approved under separation of duties and bound to an exact scope and time window."),
    (Section::Grants, Framework::NistSp800_207, "Tenet 3",
     "Access to individual enterprise resources is granted on a per-session basis",
     "Grants name exact assets and operations and end at expiry; exposure is counted per grant."),
    (Section::Grants, Framework::NistSp800_207, "Tenet 4",
     "Access to resources is determined by dynamic policy",
     "Each request's decision records the determining policies and the policy-set hash."),
    (Section::Grants, Framework::OwaspNhi2025, "NHI7:2025",
     "Long-Lived Secrets",
     "Workloads and people receive short-lived credentials per grant instead of standing secrets."),
    (Section::Teardowns, Framework::NistCsf2, "PR.AA-05",
     "Access permissions, entitlements, and authorizations are … managed, enforced, and reviewed",
     "Each ended grant's teardown was checked (sessions closed, credential refused, downstream state) and its verdict recorded."),
    (Section::Teardowns, Framework::NistSp800_207, "Tenet 6",
     "All resource authentication and authorization are dynamic and strictly enforced before access is allowed",
     "A probe with the ended grant's credential is refused before teardown is called verified."),
    (Section::Teardowns, Framework::OwaspNhi2025, "NHI1:2025",
     "Improper Offboarding",
     "Access is shown to be gone at the end of each grant; partial and failed teardowns are listed by grant."),
    (Section::BreakGlass, Framework::NistCsf2, "PR.AA-05",
     "Access permissions, entitlements, and authorizations are … reviewed",
     "Every break-glass grant opens a post-session review by someone other than its subject."),
    (Section::BreakGlass, Framework::NistCsf2, "DE.AE-02",
     "Potentially adverse events are analyzed to better understand associated activities",
     "Break-glass use is reviewed after the fact, with findings and late reviews counted."),
    (Section::Operations, Framework::NistCsf2, "DE.CM-03",
     "Personnel activity and technology usage are monitored to find potentially adverse events",
     "Every operation through a gateway is logged with its verdict; refusals are cited."),
    (Section::Operations, Framework::NistSp800_207, "Tenet 6",
     "All resource authentication and authorization are dynamic and strictly enforced before access is allowed",
     "Gateways enforce the grant's scope inside the protocol, frame by frame."),
    (Section::Exceptions, Framework::NistCsf2, "PR.AA-05",
     "Access permissions, entitlements, and authorizations are … managed, enforced, and reviewed",
     "Standing access exists only as owned, approved exceptions with compensating controls and periodic re-validation."),
    (Section::Exceptions, Framework::OwaspNhi2025, "NHI5:2025",
     "Overprivileged NHI",
     "Each exception names its subject, assets and scope; those overdue for re-validation end."),
    (Section::Findings, Framework::NistCsf2, "DE.CM-03",
     "Personnel activity and technology usage are monitored to find potentially adverse events",
     "Shared-account use, rubber-stamping and JIT that became standing are detected from the log."),
    (Section::Findings, Framework::NistSp800_207, "Tenet 7",
     "The enterprise collects as much information as possible about the current state of assets, network infrastructure and communications and uses it to improve its security posture",
     "Findings are derived from the access evidence and fed into the review campaign."),
    (Section::Findings, Framework::OwaspNhi2025, "NHI10:2025",
     "Human Use of NHI",
     "Workload identities used from changing sources, or people sharing one identity, are findings."),
    (Section::Attestations, Framework::NistCsf2, "PR.AA-05",
     "Access permissions, entitlements, and authorizations are … reviewed",
     "Where policy requires it, the subject attests what was done under the grant; missing attestations are counted."),
    (Section::Evidence, Framework::NistCsf2, "PR.PS-04",
     "Log records are generated and made available for continuous monitoring",
     "The figures were computed from a hash-chained, Merkle-committed log whose signed checkpoint this report carries."),
    (Section::Evidence, Framework::NistSp800_207, "Tenet 7",
     "The enterprise collects as much information as possible about the current state of assets, network infrastructure and communications and uses it to improve its security posture",
     "One evidence chain from request to teardown, verifiable offline."),
];

fn cited_for(report: &ComplianceReport, section: Section) -> Option<Cited> {
    Some(match section {
        Section::Grants => report.grants.cited.clone(),
        Section::Teardowns => report.teardowns.cited.clone(),
        Section::BreakGlass => report.break_glass.cited.clone(),
        Section::Operations => report.operations.cited.clone(),
        Section::Exceptions => report.exceptions.as_ref()?.cited.clone(),
        Section::Findings => report.findings.as_ref()?.cited.clone(),
        Section::Attestations => report.attestations.as_ref()?.cited.clone(),
        // The checkpoint is the evidence: it commits to every event read.
        Section::Evidence => Cited {
            events: Vec::new(),
            total: report.checkpoint.checkpoint.tree_size,
        },
    })
}

/// The mappings of a report's sections (sections the report does not carry are left out).
pub fn mappings(report: &ComplianceReport) -> Vec<ControlMapping> {
    TABLE
        .iter()
        .filter_map(|(section, framework, control, title, how)| {
            Some(ControlMapping {
                section: *section,
                framework: *framework,
                control: (*control).to_string(),
                title: (*title).to_string(),
                how: (*how).to_string(),
                cited: cited_for(report, *section)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_section_maps_to_at_least_one_control_and_every_framework_is_used() {
        for section in [
            Section::Grants,
            Section::Teardowns,
            Section::BreakGlass,
            Section::Operations,
            Section::Exceptions,
            Section::Findings,
            Section::Attestations,
            Section::Evidence,
        ] {
            assert!(TABLE.iter().any(|(s, ..)| *s == section), "{section:?}");
        }
        for fw in [
            Framework::NistCsf2,
            Framework::NistSp800_207,
            Framework::OwaspNhi2025,
        ] {
            assert!(TABLE.iter().any(|(_, f, ..)| *f == fw), "{fw:?}");
        }
    }
}
