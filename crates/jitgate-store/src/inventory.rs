//! Sites, orgs, identities and assets. The inventory file is the source of truth and is
//! loaded with upserts; each row is the item's JSON document plus the columns queries need.

use crate::codec::{enum_to_str, from_json, to_json};
use crate::{Result, Tx};
use jitgate_core::{Asset, Identity, Org, Site};
use serde::de::DeserializeOwned;
use sqlx::Row;

impl Tx {
    pub async fn upsert_site(&mut self, s: &Site) -> Result<()> {
        self.need_write("upsert_site")?;
        let doc = to_json(s, "site")?;
        sqlx::query(
            "INSERT INTO sites (id, doc) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
        )
        .bind(&s.id)
        .bind(doc)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn get_site(&mut self, id: &str) -> Result<Option<Site>> {
        self.get_doc("sites", id).await
    }

    pub async fn list_sites(&mut self) -> Result<Vec<Site>> {
        self.list_docs("sites").await
    }

    /// Returns whether the site existed.
    pub async fn delete_site(&mut self, id: &str) -> Result<bool> {
        self.delete_doc("sites", id).await
    }

    pub async fn upsert_org(&mut self, o: &Org) -> Result<()> {
        self.need_write("upsert_org")?;
        let doc = to_json(o, "org")?;
        sqlx::query(
            "INSERT INTO orgs (id, doc) VALUES ($1, $2) \
             ON CONFLICT (id) DO UPDATE SET doc = excluded.doc",
        )
        .bind(&o.id)
        .bind(doc)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn get_org(&mut self, id: &str) -> Result<Option<Org>> {
        self.get_doc("orgs", id).await
    }

    pub async fn list_orgs(&mut self) -> Result<Vec<Org>> {
        self.list_docs("orgs").await
    }

    pub async fn delete_org(&mut self, id: &str) -> Result<bool> {
        self.delete_doc("orgs", id).await
    }

    pub async fn upsert_identity(&mut self, i: &Identity) -> Result<()> {
        self.need_write("upsert_identity")?;
        let doc = to_json(i, "identity")?;
        sqlx::query(
            "INSERT INTO identities (id, kind, org, status, doc) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, org = excluded.org, \
             status = excluded.status, doc = excluded.doc",
        )
        .bind(&i.id)
        .bind(i.kind.as_str())
        .bind(i.org.clone())
        .bind(enum_to_str(&i.status, "identity status")?)
        .bind(doc)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn get_identity(&mut self, id: &str) -> Result<Option<Identity>> {
        self.get_doc("identities", id).await
    }

    pub async fn list_identities(&mut self) -> Result<Vec<Identity>> {
        self.list_docs("identities").await
    }

    pub async fn delete_identity(&mut self, id: &str) -> Result<bool> {
        self.delete_doc("identities", id).await
    }

    pub async fn upsert_asset(&mut self, a: &Asset) -> Result<()> {
        self.need_write("upsert_asset")?;
        let doc = to_json(a, "asset")?;
        sqlx::query(
            "INSERT INTO assets (id, site, doc) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET site = excluded.site, doc = excluded.doc",
        )
        .bind(&a.id)
        .bind(&a.site)
        .bind(doc)
        .execute(self.conn())
        .await?;
        Ok(())
    }

    pub async fn get_asset(&mut self, id: &str) -> Result<Option<Asset>> {
        self.get_doc("assets", id).await
    }

    pub async fn list_assets(&mut self) -> Result<Vec<Asset>> {
        self.list_docs("assets").await
    }

    pub async fn delete_asset(&mut self, id: &str) -> Result<bool> {
        self.delete_doc("assets", id).await
    }

    // `table` is always one of the constant names above, never caller input.
    async fn get_doc<T: DeserializeOwned>(&mut self, table: &str, id: &str) -> Result<Option<T>> {
        let row = sqlx::query(&format!("SELECT doc FROM {table} WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.conn())
            .await?;
        match row {
            Some(row) => {
                let doc: String = row.try_get("doc")?;
                Ok(Some(from_json(&doc, &format!("{table} id={id}"))?))
            }
            None => Ok(None),
        }
    }

    async fn list_docs<T: DeserializeOwned>(&mut self, table: &str) -> Result<Vec<T>> {
        let rows = sqlx::query(&format!("SELECT id, doc FROM {table} ORDER BY id"))
            .fetch_all(self.conn())
            .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let doc: String = row.try_get("doc")?;
                from_json(&doc, &format!("{table} id={id}"))
            })
            .collect()
    }

    async fn delete_doc(&mut self, table: &str, id: &str) -> Result<bool> {
        self.need_write(&format!("delete from {table}"))?;
        let done = sqlx::query(&format!("DELETE FROM {table} WHERE id = $1"))
            .bind(id)
            .execute(self.conn())
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
