//! The plans users can be on.

use crate::wire::wire_enum;

wire_enum!(
    /// A plan users can be on.
    PlanId { Free => "free", Pro => "pro" }
);
