//! Review campaigns and their items. The items are fixed when the campaign is opened (what
//! the period held then); each is decided once. What an item is, what a decision does and
//! who may decide are the core's (`jitgate_core::campaign`); the kinds and effects are kept
//! as the core's JSON, decisions as their names.

use crate::codec::{from_json, from_ms, limit, ms, opt_from_ms, to_json, Arg, Sql};
use crate::{Result, StoreError, Tx};
use jitgate_core::campaign::{CampaignState, DecisionEffect, ItemDecision, ItemKind};
use jitgate_core::Timestamp;
use sqlx::any::AnyRow;
use sqlx::Row;

/// One campaign.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignRecord {
    pub id: String,
    pub period_start: Timestamp,
    pub period_end: Timestamp,
    pub site: Option<String>,
    pub state: CampaignState,
    pub opened_by: String,
    pub opened_at: Timestamp,
    pub closed_by: Option<String>,
    pub closed_at: Option<Timestamp>,
}

/// One item of a campaign, with its decision once made.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignItemRecord {
    pub campaign_id: String,
    pub key: String,
    pub kind: ItemKind,
    /// Who holds or used the access reviewed.
    pub subject: String,
    /// What the reviewer looks at, in words.
    pub summary: String,
    pub decision: Option<ItemDecision>,
    pub note: Option<String>,
    pub effect: Option<DecisionEffect>,
    pub reviewer: Option<String>,
    pub decided_at: Option<Timestamp>,
}

const CAMPAIGN_COLUMNS: &str =
    "id, period_start, period_end, site, state, opened_by, opened_at, closed_by, closed_at";
const ITEM_COLUMNS: &str =
    "campaign_id, item_key, kind, subject, summary, decision, note, effect, reviewer, decided_at";

fn campaign_from_row(row: &AnyRow) -> Result<CampaignRecord> {
    let id: String = row.try_get("id")?;
    let at = format!("campaigns id={id}");
    let state: String = row.try_get("state")?;
    Ok(CampaignRecord {
        period_start: from_ms(row.try_get("period_start")?, &format!("{at} period_start"))?,
        period_end: from_ms(row.try_get("period_end")?, &format!("{at} period_end"))?,
        site: row.try_get("site")?,
        state: CampaignState::parse(&state)
            .ok_or_else(|| StoreError::Corrupt(format!("{at}: unknown state {state:?}")))?,
        opened_by: row.try_get("opened_by")?,
        opened_at: from_ms(row.try_get("opened_at")?, &format!("{at} opened_at"))?,
        closed_by: row.try_get("closed_by")?,
        closed_at: opt_from_ms(row.try_get("closed_at")?, &format!("{at} closed_at"))?,
        id,
    })
}

fn item_from_row(row: &AnyRow) -> Result<CampaignItemRecord> {
    let campaign_id: String = row.try_get("campaign_id")?;
    let key: String = row.try_get("item_key")?;
    let at = format!("campaign_items {campaign_id}/{key}");
    let decision: Option<String> = row.try_get("decision")?;
    let effect: Option<String> = row.try_get("effect")?;
    Ok(CampaignItemRecord {
        kind: from_json(&row.try_get::<String, _>("kind")?, &format!("{at} kind"))?,
        subject: row.try_get("subject")?,
        summary: row.try_get("summary")?,
        decision: match decision {
            None => None,
            Some(d) => Some(
                ItemDecision::parse(&d)
                    .ok_or_else(|| StoreError::Corrupt(format!("{at}: unknown decision {d:?}")))?,
            ),
        },
        note: row.try_get("note")?,
        effect: effect
            .map(|e| from_json(&e, &format!("{at} effect")))
            .transpose()?,
        reviewer: row.try_get("reviewer")?,
        decided_at: opt_from_ms(row.try_get("decided_at")?, &format!("{at} decided_at"))?,
        campaign_id,
        key,
    })
}

impl Tx {
    /// Insert a campaign with its items.
    pub async fn insert_campaign(
        &mut self,
        c: &CampaignRecord,
        items: &[CampaignItemRecord],
    ) -> Result<()> {
        self.need_write("insert_campaign")?;
        sqlx::query(&format!(
            "INSERT INTO campaigns ({CAMPAIGN_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&c.id)
        .bind(ms(c.period_start))
        .bind(ms(c.period_end))
        .bind(c.site.clone())
        .bind(c.state.as_str())
        .bind(&c.opened_by)
        .bind(ms(c.opened_at))
        .bind(c.closed_by.clone())
        .bind(c.closed_at.map(ms))
        .execute(self.conn())
        .await?;
        for i in items {
            sqlx::query(&format!(
                "INSERT INTO campaign_items ({ITEM_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, NULL, NULL, NULL, NULL, NULL)"
            ))
            .bind(&c.id)
            .bind(&i.key)
            .bind(to_json(&i.kind, "campaign item kind")?)
            .bind(&i.subject)
            .bind(&i.summary)
            .execute(self.conn())
            .await?;
        }
        Ok(())
    }

    pub async fn get_campaign(&mut self, id: &str) -> Result<Option<CampaignRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.conn())
        .await?;
        row.as_ref().map(campaign_from_row).transpose()
    }

    /// Newest first, continuing after campaign `after`.
    pub async fn list_campaigns(
        &mut self,
        after: Option<&str>,
        max: i64,
    ) -> Result<Vec<CampaignRecord>> {
        let mut sql = Sql::new(&format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE 1 = 1"
        ));
        if let Some(id) = after {
            let row = vec![("id", Arg::Text(id.to_string()))];
            self.continue_after(
                &mut sql,
                crate::page::After {
                    table: "campaigns",
                    what: "campaign",
                    order: "pos",
                    cmp: "<",
                    row,
                },
            )
            .await?;
        }
        let p = sql.arg(Arg::Int(limit(max, 200)));
        sql.push(&format!(" ORDER BY pos DESC LIMIT {p}"));
        let rows = sql.query().fetch_all(self.conn()).await?;
        rows.iter().map(campaign_from_row).collect()
    }

    /// Every item of a campaign, in the order listed.
    pub async fn list_campaign_items(
        &mut self,
        campaign_id: &str,
    ) -> Result<Vec<CampaignItemRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {ITEM_COLUMNS} FROM campaign_items WHERE campaign_id = $1 ORDER BY pos"
        ))
        .bind(campaign_id)
        .fetch_all(self.conn())
        .await?;
        rows.iter().map(item_from_row).collect()
    }

    /// Record the decision on an undecided item. [`StoreError::Conflict`] if decided
    /// already, [`StoreError::NotFound`] if there is no such item.
    pub async fn decide_campaign_item(&mut self, i: &CampaignItemRecord) -> Result<()> {
        self.need_write("decide_campaign_item")?;
        let (Some(decision), Some(effect), Some(at)) = (i.decision, &i.effect, i.decided_at) else {
            return Err(StoreError::Encode(
                "a campaign decision needs its decision, effect and time".into(),
            ));
        };
        let done = sqlx::query(
            "UPDATE campaign_items SET decision = $1, note = $2, effect = $3, reviewer = $4, \
             decided_at = $5 WHERE campaign_id = $6 AND item_key = $7 AND decision IS NULL",
        )
        .bind(decision.as_str())
        .bind(i.note.clone().unwrap_or_default())
        .bind(to_json(effect, "campaign decision effect")?)
        .bind(i.reviewer.clone())
        .bind(ms(at))
        .bind(&i.campaign_id)
        .bind(&i.key)
        .execute(self.conn())
        .await?;
        if done.rows_affected() > 0 {
            return Ok(());
        }
        let exists = sqlx::query(
            "SELECT decision FROM campaign_items WHERE campaign_id = $1 AND item_key = $2",
        )
        .bind(&i.campaign_id)
        .bind(&i.key)
        .fetch_optional(self.conn())
        .await?;
        match exists {
            Some(_) => Err(StoreError::Conflict(format!(
                "campaign item {}/{} was decided already",
                i.campaign_id, i.key
            ))),
            None => Err(StoreError::not_found(
                "campaign item",
                &format!("{}/{}", i.campaign_id, i.key),
            )),
        }
    }

    /// Mark an open campaign closed. [`StoreError::Conflict`] if it was closed already.
    pub async fn close_campaign(&mut self, id: &str, by: &str, at: Timestamp) -> Result<()> {
        self.need_write("close_campaign")?;
        let done = sqlx::query(
            "UPDATE campaigns SET state = 'closed', closed_by = $1, closed_at = $2 \
             WHERE id = $3 AND state = 'open'",
        )
        .bind(by)
        .bind(ms(at))
        .bind(id)
        .execute(self.conn())
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict(format!("campaign {id} is not open")));
        }
        Ok(())
    }

    /// Break-glass grants issued in `[from, to)`, oldest first.
    pub async fn emergency_grants_in(
        &mut self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT id FROM grants WHERE emergency = 1 AND created_at >= $1 AND created_at < $2 \
             ORDER BY created_at, pos",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("id").map_err(StoreError::from))
            .collect()
    }

    /// Grants whose teardown started in `[from, to)` and stands `partial` or `failed`, with
    /// the verdict, oldest first.
    pub async fn unverified_teardowns_in(
        &mut self,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT grant_id, verdict FROM teardowns WHERE verdict IN ('partial', 'failed') \
             AND started_at >= $1 AND started_at < $2 ORDER BY started_at, grant_id",
        )
        .bind(ms(from))
        .bind(ms(to))
        .fetch_all(self.conn())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("grant_id")?, r.try_get("verdict")?)))
            .collect()
    }
}
