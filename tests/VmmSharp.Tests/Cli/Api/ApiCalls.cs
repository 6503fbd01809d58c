using System.Net;
using System.Text;
using System.Text.Json;

namespace VmmSharp.Tests.Cli.Api;

/// <summary>Requests as Firecracker's clients send them, and the answers' status and fault message.</summary>
internal static class ApiCalls
{
    public sealed record Answer(HttpStatusCode Status, string Body)
    {
        public string Fault => JsonDocument.Parse(Body).RootElement.GetProperty("fault_message").GetString()!;

        public JsonElement Json => JsonDocument.Parse(Body).RootElement;
    }

    public static Answer Put(this HttpClient client, string path, string json) => Send(client, HttpMethod.Put, path, json);

    public static Answer Patch(this HttpClient client, string path, string json) => Send(client, HttpMethod.Patch, path, json);

    public static Answer Get(this HttpClient client, string path) => Send(client, HttpMethod.Get, path, null);

    public static Answer Send(this HttpClient client, HttpMethod method, string path, string? json)
    {
        using var request = new HttpRequestMessage(method, path);
        if (json is not null)
        {
            request.Content = new StringContent(json, Encoding.UTF8, "application/json");
        }
        using HttpResponseMessage response = client.Send(request);
        using var reader = new StreamReader(response.Content.ReadAsStream());
        return new Answer(response.StatusCode, reader.ReadToEnd());
    }

    public static string Quoted(string path) => JsonSerializer.Serialize(path);

    public static void AssertNoContent(Answer a) => Assert.True(a.Status == HttpStatusCode.NoContent, $"{a.Status}: {a.Body}");
}
