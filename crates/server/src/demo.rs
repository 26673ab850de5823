//! Demo data, so a newcomer can send mail at once: two tenants (a
//! municipality and a förmedlare sending for two authorities), each with a
//! credential and a signing key, and recipients in every state the register
//! knows. Written to `<data>/demo/demo.json` (mode 0600) and reused on the
//! next start. Never used in production: `--demo` is off unless asked for.
//!
//! Depends on nothing else in this crate: `app` calls [`seed`] with what it
//! needs (the built-in operator, the recipient-token key).

use anyhow::Context as _;
use base64::Engine as _;
use kuvert_crypto::signing::SigningKey;
use kuvert_domain::clock::Clock;
use kuvert_domain::identity::{OrganisationNumber, RecipientId};
use kuvert_domain::ids::{OperatorId, TenantId};
use kuvert_register::Register;
use kuvert_relay::tenancy::Tenancy;
use kuvert_web::auth::RecipientTokens;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoTenant {
    pub tenant: String,
    pub name: String,
    /// `Authorization: Bearer <token>`.
    pub token: String,
    pub senders: Vec<DemoSender>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoSender {
    pub id: String,
    pub name: String,
    pub key_id: String,
    /// The sender's Ed25519 secret key, base64 (demo only!).
    pub signing_key: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoRecipient {
    pub name: String,
    pub id: String,
    /// What the register says of them.
    pub state: String,
    /// A recipient token for the mailbox API (audience: the built-in
    /// operator; mail.read, mail.manage), minted anew at each start and
    /// valid for the maximum of 24 hours.
    pub token: String,
    /// A token for the register's `/register/v1/me` (registration.read,
    /// registration.write), likewise.
    #[serde(default)]
    pub registration_token: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DemoData {
    pub url: String,
    pub tenants: Vec<DemoTenant>,
    pub recipients: Vec<DemoRecipient>,
}

impl DemoSender {
    pub fn key(&self) -> anyhow::Result<SigningKey> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(&self.signing_key)?;
        let bytes: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("bad demo key"))?;
        Ok(SigningKey::from_bytes(&bytes))
    }
}

/// A valid identity number from a date and a serial: the Luhn check digit
/// is computed, so the demo needs no list of real numbers.
pub fn person_number(yyyymmdd: &str, serial: u16) -> String {
    let nine = format!("{}{serial:03}", &yyyymmdd[2..]);
    format!("{}{serial:03}{}", yyyymmdd, luhn_digit(&nine))
}

/// A valid organisation number (10 digits) from its first nine.
pub fn organisation_number(nine: &str) -> String {
    format!("{nine}{}", luhn_digit(nine))
}

fn luhn_digit(nine: &str) -> u32 {
    let sum: u32 = nine
        .chars()
        .filter_map(|c| c.to_digit(10))
        .enumerate()
        .map(|(i, d)| {
            let v = if i % 2 == 0 { d * 2 } else { d };
            v / 10 + v % 10
        })
        .sum();
    (10 - sum % 10) % 10
}

pub fn demo_file(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("demo").join("demo.json")
}

pub fn load(data_dir: &Path) -> anyhow::Result<DemoData> {
    let path = demo_file(data_dir);
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "reading {} (start `kuvert serve --demo` first)",
            path.display()
        )
    })?;
    Ok(serde_json::from_str(&text)?)
}

/// Creates the demo data (or reuses what an earlier start wrote): tenants
/// through `db`, recipients registered with `operator` through `register`,
/// recipient tokens minted with `tokens`.
#[allow(clippy::too_many_arguments)]
pub async fn seed(
    register: &Register,
    register_key: &Arc<kuvert_crypto::signing::SigningKey>,
    web_sender_kek: &kuvert_crypto::at_rest::KeyEncryptionKey,
    operator: &OperatorId,
    tokens: &RecipientTokens,
    data_dir: &Path,
    url: &str,
    clock: &dyn Clock,
) -> anyhow::Result<DemoData> {
    let db = &register.db;
    let path = demo_file(data_dir);
    let tenancy = Tenancy {
        db: db.clone(),
        clock: Arc::new(kuvert_domain::clock::SystemClock),
        register_key: register_key.clone(),
    };
    if let Ok(mut existing) = load(data_dir) {
        let first = existing
            .tenants
            .first()
            .map(|t| t.tenant.clone())
            .unwrap_or_default();
        if db.tenant(&TenantId::parse(&first)?).await?.is_some() {
            existing.url = url.to_owned();
            // Tokens live at most a day: fresh ones for this run.
            for recipient in &mut existing.recipients {
                let id = RecipientId::parse_canonical(&recipient.id)?;
                (recipient.token, recipient.registration_token) =
                    demo_tokens(tokens, operator, &id, clock)?;
            }
            write(&path, &existing)?;
            web_sending(&tenancy, register, web_sender_kek, &existing, clock).await?;
            return Ok(existing);
        }
    }
    let plan = [
        (
            "demokommun",
            "Demo kommun",
            vec![(organisation_number("212000999"), "Demo kommun")],
        ),
        (
            "demoformedlare",
            "Demo förmedlare AB",
            vec![
                (organisation_number("202100999"), "Demomyndigheten"),
                (organisation_number("202200999"), "Exempelverket"),
            ],
        ),
    ];
    let mut tenants = Vec::new();
    for (id, name, senders) in plan {
        let tenant = TenantId::parse(id)?;
        tenancy.create_tenant("demo", &tenant, name).await?;
        let credential = tenancy.create_credential("demo", &tenant, "demo").await?;
        let mut demo_senders = Vec::new();
        for (sender, sender_name) in senders {
            let org = OrganisationNumber::parse(&sender)?;
            tenancy
                .add_sender("demo", &tenant, &org, sender_name, false)
                .await?;
            let key = SigningKey::generate();
            let key_id = tenancy
                .add_key("demo", &tenant, &org, &key.public_key().to_base64())
                .await?;
            demo_senders.push(DemoSender {
                id: org.as_str().to_owned(),
                name: sender_name.to_owned(),
                key_id,
                signing_key: base64::engine::general_purpose::STANDARD.encode(*key.to_bytes()),
            });
        }
        tenants.push(DemoTenant {
            tenant: id.to_owned(),
            name: name.to_owned(),
            token: credential.token,
            senders: demo_senders,
        });
    }
    let today = clock.today();
    let people = [
        (
            "Anna Andersson",
            person_number("19800101", 238),
            "registered",
        ),
        ("Bertil Berg", person_number("19750505", 317), "registered"),
        (
            "Cecilia Ceder",
            person_number("19900909", 426),
            "not_registered",
        ),
        (
            "David Dahl",
            person_number("19850303", 535),
            "refuses_demokommun",
        ),
        (
            "Eva Ek (16 år)",
            person_number("20100615", 644),
            "too_young",
        ),
        (
            "Förening Framtid",
            organisation_number("802000999"),
            "pending",
        ),
    ];
    let mut recipients = Vec::new();
    for (name, number, state) in people {
        let id = RecipientId::parse(&number, today)?;
        match state {
            "registered" => register.register(&id, operator, false).await?,
            "refuses_demokommun" => {
                register.register(&id, operator, false).await?;
                let sender = OrganisationNumber::parse(&tenants[0].senders[0].id)?;
                register.set_sender_refused(&id, &sender, true).await?;
            }
            "pending" => register.register(&id, operator, true).await?,
            _ => {}
        }
        let (token, registration_token) = demo_tokens(tokens, operator, &id, clock)?;
        recipients.push(DemoRecipient {
            name: name.to_owned(),
            id: id.as_str().to_owned(),
            state: state.to_owned(),
            token,
            registration_token,
        });
    }
    let data = DemoData {
        url: url.to_owned(),
        tenants,
        recipients,
    };
    write(&path, &data)?;
    web_sending(&tenancy, register, web_sender_kek, &data, clock).await?;
    Ok(data)
}

/// The demo's authority user: a case officer of Demo kommun who sends by
/// hand from the sender pages (decision 0020).
pub fn web_sender_person() -> String {
    person_number("19880808", 971)
}

/// Sending by hand works at once in the demo: Demo kommun's sender has a
/// web sending key and [`web_sender_person`] holds its sender role. Done
/// on every start, only what is missing (a demo made before keeps its data).
async fn web_sending(
    tenancy: &Tenancy,
    register: &Register,
    kek: &kuvert_crypto::at_rest::KeyEncryptionKey,
    data: &DemoData,
    clock: &dyn Clock,
) -> anyhow::Result<()> {
    let Some(kommun) = data.tenants.first() else {
        return Ok(());
    };
    let Some(sender) = kommun.senders.first() else {
        return Ok(());
    };
    let tenant = TenantId::parse(&kommun.tenant)?;
    let org = OrganisationNumber::parse(&sender.id)?;
    if tenancy
        .db
        .web_sender_key(&tenant, org.as_str())
        .await?
        .is_none()
    {
        tenancy.create_web_key("demo", &tenant, &org, kek).await?;
    }
    let RecipientId::Person(person) = RecipientId::parse(&web_sender_person(), clock.today())?
    else {
        anyhow::bail!("the demo web sender is not a person");
    };
    if tenancy
        .db
        .web_grant_id(&tenant, org.as_str(), person.as_str())
        .await?
        .is_none()
    {
        let pseudonym = register.pseudonyms.pseudonym(person.as_str());
        tenancy
            .grant_web_sender("demo", &tenant, &org, &person, &pseudonym)
            .await?;
    }
    Ok(())
}

/// A demo recipient's mail token and registration token, each with all the
/// scopes of its service and the longest lifetime.
fn demo_tokens(
    tokens: &RecipientTokens,
    operator: &OperatorId,
    id: &RecipientId,
    clock: &dyn Clock,
) -> anyhow::Result<(String, String)> {
    use kuvert_web::auth::{MAX_TOKEN_LIFETIME_SECONDS, REGISTER_AUDIENCE, Scope};
    let now = clock.now().unix_timestamp();
    let mail = tokens.mint(
        id,
        operator.as_str(),
        &[Scope::MailRead, Scope::MailManage],
        now,
        MAX_TOKEN_LIFETIME_SECONDS,
    )?;
    let registration = tokens.mint(
        id,
        REGISTER_AUDIENCE,
        &[Scope::RegistrationRead, Scope::RegistrationWrite],
        now,
        MAX_TOKEN_LIFETIME_SECONDS,
    )?;
    Ok((mail.token, registration.token))
}

fn write(path: &Path, data: &DemoData) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let text = serde_json::to_string_pretty(data)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    use std::io::Write as _;
    options.open(path)?.write_all(text.as_bytes())?;
    Ok(())
}

/// Whom the development identity provider offers to log in as: the demo's
/// people (not the organisation), a signatory of the demo organisation, and
/// one person with an e-ID below LoA3, to show the refusal.
pub fn test_people(
    demo: Option<&DemoData>,
    today: time::Date,
) -> Vec<kuvert_web::dev_idp::TestPerson> {
    use kuvert_web::dev_idp::TestPerson;
    use kuvert_web::oidc::Loa;
    let mut people = Vec::new();
    for recipient in demo.map(|d| d.recipients.as_slice()).unwrap_or_default() {
        let Ok(id) = RecipientId::parse(&recipient.id, today) else {
            continue;
        };
        if !id.is_person() {
            continue;
        }
        // "Eva Ek (16 år)": the names without the note.
        let name = recipient.name.split(" (").next().unwrap_or(&recipient.name);
        let (given, family) = name.split_once(' ').unwrap_or((name, ""));
        people.push(TestPerson {
            given_name: given.to_owned(),
            family_name: family.to_owned(),
            identity_number: recipient.id.clone(),
            loa: Loa::Loa3,
            note: recipient.state.replace('_', " "),
        });
    }
    people.push(TestPerson {
        given_name: "Sigrid".to_owned(),
        family_name: "Signatär".to_owned(),
        identity_number: person_number("19700707", 753),
        loa: Loa::Loa4,
        note: "firmatecknare för Förening Framtid / signatory of Förening Framtid".to_owned(),
    });
    people.push(TestPerson {
        given_name: "Lars".to_owned(),
        family_name: "Lågnivå".to_owned(),
        identity_number: person_number("19950210", 862),
        loa: Loa::Loa2,
        note: "e-legitimation på nivå 2: nekas / e-ID at level 2: refused".to_owned(),
    });
    people.push(TestPerson {
        given_name: "Hanna".to_owned(),
        family_name: "Handläggare".to_owned(),
        identity_number: web_sender_person(),
        loa: Loa::Loa3,
        note: "handläggare på Demo kommun: skickar för hand / case officer at Demo kommun: sends by hand"
            .to_owned(),
    });
    people
}
