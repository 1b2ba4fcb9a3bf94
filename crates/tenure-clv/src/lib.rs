#![deny(missing_docs)]
//! Probabilistic customer-base models, as pure math over summaries: no Tenure types, no I/O.
//!
//! | Model | Data | Paper |
//! |---|---|---|
//! | [`bgnbd`] BG/NBD | (x, t_x, T) per customer | Fader, Hardie & Lee (2005), "Counting your customers the easy way" |
//! | [`gamma_gamma`] Gamma-Gamma | (x, mean value) of repeat buyers | Fader, Hardie & Lee (2005), "RFM and CLV" / Colombo & Jiang (1999) |
//! | [`sbg`] shifted-beta-geometric | customers alive per period | Fader & Hardie (2007), "How to project customer retention" |
//! | [`bgbb`] BG/BB | (x, t_x, n) of discrete opportunities | Fader, Hardie & Shang (2010) |
//! | [`pareto_nbd`] Pareto/NBD | (x, t_x, T) | Schmittlein, Morrison & Colombo (1987); Fader, Hardie & Lee (2005 note) |
//! | [`mbgnbd`] MBG/NBD | (x, t_x, T) | Batislam, Denizel & Filiztekin (2007) |
//!
//! Parameters are fitted by maximum likelihood with a quasi-Newton (BFGS) optimiser in
//! log-parameters from deterministic starts ([`optimize`]); standard errors come from the
//! Hessian of the log-likelihood at the optimum.

pub mod bgbb;
pub mod bgnbd;
pub mod clv;
pub mod gamma_gamma;
pub mod mbgnbd;
pub mod optimize;
mod parallel;
pub mod pareto_nbd;
pub mod purchases;
pub mod sbg;
pub mod special;
pub mod summary;
