//! The Alibaba Cloud system policies ramgate knows without files (SPEC §3).

use super::document::parse_policy;
use super::Policy;

pub const FULL_ACCESS: &str = "AliyunECIFullAccess";
pub const READ_ONLY: &str = "AliyunECIReadOnlyAccess";
pub const SERVICE_ROLE_POLICY: &str = "AliyunECIContainerGroupRolePolicy";
pub const SERVICE_ROLE: &str = "AliyunECIContainerGroupRole";

const SOURCES: &[(&str, &str)] = &[
    (
        FULL_ACCESS,
        r#"{"Version":"1","Statement":[
            {"Effect":"Allow","Action":"eci:*","Resource":"*"},
            {"Effect":"Allow","Action":"ecs:DescribeSecurityGroups","Resource":"*"},
            {"Effect":"Allow","Action":["vpc:DescribeVSwitches","vpc:DescribeVpcs","vpc:DescribeEipAddresses"],"Resource":"*"}]}"#,
    ),
    (
        READ_ONLY,
        r#"{"Version":"1","Statement":[
            {"Effect":"Allow","Action":["eci:Describe*","eci:List*"],"Resource":"*"},
            {"Effect":"Allow","Action":"ecs:DescribeSecurityGroups","Resource":"*"},
            {"Effect":"Allow","Action":["vpc:DescribeVpcs","vpc:DescribeVSwitches"],"Resource":"*"}]}"#,
    ),
    (
        SERVICE_ROLE_POLICY,
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Resource":"*","Action":[
            "ecs:CreateNetworkInterfacePermission","ecs:DeleteNetworkInterfacePermission",
            "ecs:CreateNetworkInterface","ecs:DescribeNetworkInterfaces","ecs:AttachNetworkInterface",
            "ecs:DetachNetworkInterface","ecs:DeleteNetworkInterface","ecs:DescribeSecurityGroups",
            "vpc:DescribeVSwitches","vpc:DescribeVpcs","vpc:AssociateEipAddress","vpc:DescribeEipAddresses",
            "cr:Get*","cr:List*","cr:PullRepository"]}]}"#,
    ),
];

pub fn is_builtin(name: &str) -> bool {
    SOURCES.iter().any(|(n, _)| *n == name)
}

/// Every built-in policy, compiled. Their sources are constants checked by the tests below,
/// so a failure here is a programming error, reported rather than panicking.
pub fn all() -> Vec<Policy> {
    SOURCES
        .iter()
        .filter_map(|(name, source)| parse_policy(name, None, source).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_compiles() {
        for (name, source) in SOURCES {
            if let Err(e) = parse_policy(name, None, source) {
                panic!("{name}: {e}");
            }
        }
        assert_eq!(all().len(), SOURCES.len());
    }
}
