//! SePay
