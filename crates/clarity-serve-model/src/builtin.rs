//! The builtin model ([`clarity_model::BuiltinModel`]) as a [`ChatModel`].

use std::net::SocketAddr;
use std::sync::Arc;

use clarity_image::Image;
use clarity_model::{BuiltinModel, PredictOptions};

use crate::{ChatAnswer, ChatModel, ServeError};

/// The model id under which the builtin model is served.
pub const BUILTIN_MODEL_NAME: &str = "clarity-builtin";

/// The builtin CNN behind the chat protocol. It answers its one question (nodule or not, and
/// where) and ignores the prompt text; `temperature` and `seed` drive its sampling.
#[derive(Debug, Clone)]
pub struct BuiltinChatModel {
    model: BuiltinModel,
}

impl BuiltinChatModel {
    pub fn new(model: BuiltinModel) -> Self {
        Self { model }
    }

    /// The weights compiled into `clarity-model`.
    pub fn load_embedded() -> Result<Self, ServeError> {
        BuiltinModel::load_embedded()
            .map(Self::new)
            .map_err(|e| ServeError::ModelLoad(e.to_string()))
    }

    pub fn model(&self) -> &BuiltinModel {
        &self.model
    }
}

impl ChatModel for BuiltinChatModel {
    fn name(&self) -> &str {
        BUILTIN_MODEL_NAME
    }

    fn fingerprint(&self) -> Option<String> {
        Some(self.model.weights_hash().to_string())
    }

    fn classify(
        &self,
        image: &Image,
        _prompt: &str,
        temperature: f64,
        seed: u64,
    ) -> Result<ChatAnswer, String> {
        let options = PredictOptions {
            temperature,
            seed,
            saliency: false,
        };
        let p = self
            .model
            .predict(image, &options)
            .map_err(|e| e.to_string())?;
        Ok(ChatAnswer {
            label: p.label,
            justification: p.justification,
            probabilities: p.probabilities,
        })
    }
}

/// Loads the embedded builtin model, binds `addr` and serves until the task is dropped.
/// To learn the bound port (with port 0) bind a listener yourself and call [`crate::serve`]
/// with [`BuiltinChatModel::load_embedded`].
pub async fn run_builtin(addr: SocketAddr) -> Result<(), ServeError> {
    let model = Arc::new(BuiltinChatModel::load_embedded()?);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })?;
    crate::serve(listener, model).await
}
