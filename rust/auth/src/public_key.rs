//! Issuers' public keys as JWKs say them, and checking a JWS signature with one. Only the
//! asymmetric algorithms of the allow-list exist here: an HMAC "key" made of a public JWK is
//! how alg-confusion attacks forge tokens, so there is no code path that could accept one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};

use crate::keys::Jwk;

/// The signature algorithms tokens may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Rs256,
    Rs384,
    Rs512,
    Ps256,
    Ps384,
    Ps512,
    Es256,
    Es384,
    EdDsa,
}

impl Algorithm {
    const ALL: [Self; 9] = [
        Self::Rs256,
        Self::Rs384,
        Self::Rs512,
        Self::Ps256,
        Self::Ps384,
        Self::Ps512,
        Self::Es256,
        Self::Es384,
        Self::EdDsa,
    ];

    /// `None` for anything off the allow-list (`none`, `HS256`, ...): names are case-sensitive
    /// (RFC 7515 §4.1.1), so `none` spelled `None` is refused too.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Rs384 => "RS384",
            Self::Rs512 => "RS512",
            Self::Ps256 => "PS256",
            Self::Ps384 => "PS384",
            Self::Ps512 => "PS512",
            Self::Es256 => "ES256",
            Self::Es384 => "ES384",
            Self::EdDsa => "EdDSA",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

impl Curve {
    fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
        }
    }
}

#[derive(Debug)]
enum Material {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// The uncompressed SEC1 point `0x04 || x || y`.
    Ec {
        curve: Curve,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

/// One usable verification key of an issuer.
#[derive(Debug)]
pub(crate) struct PublicKey {
    pub(crate) kid: Option<String>,
    /// The algorithm the JWK pins itself to, if it does.
    alg: Option<String>,
    material: Material,
}

fn b64_param(jwk: &Jwk, name: &str) -> Result<Vec<u8>, String> {
    let value = jwk
        .param(name)
        .ok_or_else(|| format!("no {name:?} parameter"))?;
    URL_SAFE_NO_PAD
        .decode(value.trim_end_matches('='))
        .map_err(|_| format!("{name:?} is not base64url"))
}

fn without_leading_zeros(mut bytes: Vec<u8>) -> Vec<u8> {
    let zeros = bytes.iter().take_while(|b| **b == 0).count();
    bytes.drain(..zeros);
    bytes
}

impl PublicKey {
    /// The key `jwk` describes, or why it is of no use for checking signatures.
    pub(crate) fn from_jwk(jwk: &Jwk) -> Result<Self, String> {
        if jwk.use_.as_deref().is_some_and(|u| u != "sig") {
            return Err("not a signature key".into());
        }
        let material = match jwk.kty.as_str() {
            "RSA" => Material::Rsa {
                // Some providers pad the modulus with a zero byte; ring wants it minimal.
                n: without_leading_zeros(b64_param(jwk, "n")?),
                e: without_leading_zeros(b64_param(jwk, "e")?),
            },
            "EC" => {
                let curve = match jwk.param("crv") {
                    Some("P-256") => Curve::P256,
                    Some("P-384") => Curve::P384,
                    other => return Err(format!("unsupported curve {other:?}")),
                };
                let (x, y) = (b64_param(jwk, "x")?, b64_param(jwk, "y")?);
                if x.len() != curve.coordinate_len() || y.len() != curve.coordinate_len() {
                    return Err("coordinates of the wrong length".into());
                }
                let mut point = Vec::with_capacity(1 + x.len() + y.len());
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                Material::Ec { curve, point }
            }
            "OKP" => match jwk.param("crv") {
                Some("Ed25519") => {
                    let x = b64_param(jwk, "x")?;
                    if x.len() != 32 {
                        return Err("an Ed25519 key is 32 bytes".into());
                    }
                    Material::Ed25519(x)
                }
                other => return Err(format!("unsupported curve {other:?}")),
            },
            other => return Err(format!("unsupported key type {other:?}")),
        };
        Ok(Self {
            kid: jwk.kid.clone(),
            alg: jwk.alg.clone(),
            material,
        })
    }

    /// Whether this key can check an `alg` signature: the right key type and curve, and the
    /// key's own `alg`, if it names one, is `alg`.
    pub(crate) fn suits(&self, alg: Algorithm) -> bool {
        if self.alg.as_deref().is_some_and(|own| own != alg.as_str()) {
            return false;
        }
        use Algorithm as A;
        match &self.material {
            Material::Rsa { .. } => matches!(
                alg,
                A::Rs256 | A::Rs384 | A::Rs512 | A::Ps256 | A::Ps384 | A::Ps512
            ),
            Material::Ec { curve, .. } => matches!(
                (curve, alg),
                (Curve::P256, A::Es256) | (Curve::P384, A::Es384)
            ),
            Material::Ed25519(_) => alg == A::EdDsa,
        }
    }

    /// Whether `signature` over `message` verifies with this key under `alg` (false when the
    /// key does not [`suit`](Self::suits) `alg`).
    pub(crate) fn verify(&self, alg: Algorithm, message: &[u8], signature: &[u8]) -> bool {
        if !self.suits(alg) {
            return false;
        }
        use Algorithm as A;
        match &self.material {
            Material::Rsa { n, e } => {
                let params: &signature::RsaParameters = match alg {
                    A::Rs256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                    A::Rs384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                    A::Rs512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                    A::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                    A::Ps384 => &signature::RSA_PSS_2048_8192_SHA384,
                    A::Ps512 => &signature::RSA_PSS_2048_8192_SHA512,
                    A::Es256 | A::Es384 | A::EdDsa => return false,
                };
                RsaPublicKeyComponents { n, e }
                    .verify(params, message, signature)
                    .is_ok()
            }
            Material::Ec { curve, point } => {
                let algorithm = match curve {
                    Curve::P256 => &signature::ECDSA_P256_SHA256_FIXED,
                    Curve::P384 => &signature::ECDSA_P384_SHA384_FIXED,
                };
                UnparsedPublicKey::new(algorithm, point)
                    .verify(message, signature)
                    .is_ok()
            }
            Material::Ed25519(x) => UnparsedPublicKey::new(&signature::ED25519, x)
                .verify(message, signature)
                .is_ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(
        clippy::unwrap_used,
        reason = "test code: a panic is how a test reports failure"
    )]

    use super::*;
    use crate::keys::SigningKey;

    #[test]
    fn only_asymmetric_algorithms_parse() {
        for name in [
            "none", "None", "NONE", "HS256", "HS384", "HS512", "ES512", "es256", "",
        ] {
            assert_eq!(Algorithm::parse(name), None, "{name}");
        }
        for alg in Algorithm::ALL {
            assert_eq!(Algorithm::parse(alg.as_str()), Some(alg));
        }
    }

    #[test]
    fn keys_suit_their_family_only() {
        let key = PublicKey::from_jwk(&SigningKey::generate().unwrap().public_jwk()).unwrap();
        assert!(key.suits(Algorithm::Es256));
        for alg in [
            Algorithm::Es384,
            Algorithm::Rs256,
            Algorithm::Ps256,
            Algorithm::EdDsa,
        ] {
            assert!(!key.suits(alg), "{alg:?}");
            assert!(!key.verify(alg, b"m", &[0; 64]));
        }
    }

    #[test]
    fn unusable_jwks_are_refused() {
        let mut jwk = SigningKey::generate().unwrap().public_jwk();
        jwk.use_ = Some("enc".into());
        assert!(PublicKey::from_jwk(&jwk).is_err());
        let mut jwk = SigningKey::generate().unwrap().public_jwk();
        jwk.params.insert("crv".into(), "P-521".into());
        assert!(PublicKey::from_jwk(&jwk).is_err());
        let mut jwk = SigningKey::generate().unwrap().public_jwk();
        jwk.params.insert("x".into(), "AAAA".into());
        assert!(PublicKey::from_jwk(&jwk).is_err());
        let mut jwk = SigningKey::generate().unwrap().public_jwk();
        jwk.kty = "oct".into();
        jwk.params.insert("k".into(), "c2VjcmV0".into());
        assert!(PublicKey::from_jwk(&jwk).is_err());
    }
}
