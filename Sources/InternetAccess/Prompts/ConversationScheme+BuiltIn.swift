extension ConversationScheme {
    /// The schemes Tessera knows, each from the vendor's public API reference:
    /// - OpenAI: platform.openai.com/docs/api-reference/chat/create and …/responses/create
    /// - Azure OpenAI: learn.microsoft.com/azure/ai-foundry/openai/reference (deployments and the v1 API)
    /// - Anthropic: docs.anthropic.com/en/api/messages
    /// - Gemini: ai.google.dev/api/generate-content (`generateContent`, `streamGenerateContent`), and Vertex AI's
    ///   regional `…-aiplatform.googleapis.com` endpoints, which take the same body
    /// - Mistral: docs.mistral.ai/api (chat and agents completions)
    /// - Cohere: docs.cohere.com/reference/chat (v2) and …/chat-v1
    /// - DeepSeek: api-docs.deepseek.com (chat completions, with or without `/v1`, and its Anthropic-compatible API)
    /// - xAI Grok: docs.x.ai/docs/api-reference (chat completions, responses, Anthropic-compatible messages)
    /// - Perplexity: docs.perplexity.ai/api-reference/chat-completions-post
    public static let builtIn: [ConversationScheme] = [
        .init(name: "openai-chat-completions", host: "api.openai.com", path: "/v1/chat/completions", format: .chatCompletions),
        .init(name: "openai-responses", host: "api.openai.com", path: "/v1/responses", format: .responses),
        .init(name: "azure-openai-chat-completions", host: "*.openai.azure.com", path: "/openai/*chat/completions",
              format: .chatCompletions),
        .init(name: "azure-openai-responses", host: "*.openai.azure.com", path: "/openai/*responses", format: .responses),
        .init(name: "anthropic-messages", host: "api.anthropic.com", path: "/v1/messages", format: .anthropicMessages),
        .init(name: "gemini-generate-content", host: "generativelanguage.googleapis.com", path: "/*/models/*:*enerateContent",
              format: .geminiContents),
        .init(name: "vertex-ai-generate-content", host: "*aiplatform.googleapis.com", path: "/*/models/*:*enerateContent",
              format: .geminiContents),
        .init(name: "mistral-chat-completions", host: "api.mistral.ai", path: "/v1/chat/completions", format: .chatCompletions),
        .init(name: "mistral-agents-completions", host: "api.mistral.ai", path: "/v1/agents/completions",
              format: .chatCompletions),
        .init(name: "cohere-chat-v2", host: "api.cohere.com", path: "/v2/chat", format: .chatCompletions),
        .init(name: "cohere-chat-v2", host: "api.cohere.ai", path: "/v2/chat", format: .chatCompletions),
        .init(name: "cohere-chat-v1", host: "api.cohere.com", path: "/v1/chat", format: .cohereChatV1),
        .init(name: "cohere-chat-v1", host: "api.cohere.ai", path: "/v1/chat", format: .cohereChatV1),
        .init(name: "deepseek-chat-completions", host: "api.deepseek.com", path: "/chat/completions", format: .chatCompletions),
        .init(name: "deepseek-chat-completions", host: "api.deepseek.com", path: "/v1/chat/completions",
              format: .chatCompletions),
        .init(name: "deepseek-anthropic-messages", host: "api.deepseek.com", path: "/anthropic/v1/messages",
              format: .anthropicMessages),
        .init(name: "xai-chat-completions", host: "api.x.ai", path: "/v1/chat/completions", format: .chatCompletions),
        .init(name: "xai-responses", host: "api.x.ai", path: "/v1/responses", format: .responses),
        .init(name: "xai-messages", host: "api.x.ai", path: "/v1/messages", format: .anthropicMessages),
        .init(name: "perplexity-chat-completions", host: "api.perplexity.ai", path: "/chat/completions", format: .chatCompletions),
        .init(name: "perplexity-chat-completions", host: "api.perplexity.ai", path: "/v1/chat/completions",
              format: .chatCompletions),
    ]
}
