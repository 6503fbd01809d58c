using System.Text.Json;
using System.Text.Json.Serialization.Metadata;

namespace VmmSharp.Cli.Api;

/// <summary>Turns a request body into one of the API's models, or an <see cref="ApiFault"/> that says what is wrong with it.</summary>
internal static class ApiRequest
{
    /// <summary>The largest body accepted: Firecracker's default payload limit (51200 bytes).</summary>
    public const int MaxBodySize = 51200;

    /// <summary>
    /// How much of a refused body is read and discarded before the answer. A client that writes its whole body
    /// before it reads (most do, unless they send <c>Expect: 100-continue</c>) gets a reset instead of the 413 if the
    /// server closes on unread data, so a body up to this size is drained; beyond it the connection is closed.
    /// </summary>
    public const int MaxDrainSize = 1 << 20;

    /// <summary>Parses <paramref name="body"/> as <typeparamref name="T"/>: one JSON object with known fields, the required ones present.</summary>
    /// <exception cref="ApiFault">The body is too large, is not JSON, or does not fit the model; the message says where.</exception>
    public static T Parse<T>(ReadOnlySpan<byte> body, JsonTypeInfo<T> type, int maxSize = MaxBodySize)
        where T : class
    {
        if (body.Length > maxSize)
        {
            throw new ApiFault($"the body ({body.Length} bytes) is over the limit of {maxSize} bytes", ApiFault.PayloadTooLarge);
        }
        try
        {
            return JsonSerializer.Deserialize(body, type)
                ?? throw new ApiFault($"the body is null: give a JSON object ({Name(type)})");
        }
        catch (JsonException e)
        {
            throw new ApiFault($"invalid {Name(type)} body: {e.Message}");
        }
    }

    /// <summary>Reads the whole body of <paramref name="request"/>, refusing one over <see cref="MaxBodySize"/> without reading it all.</summary>
    public static async Task<byte[]> ReadBodyAsync(Stream body, long? contentLength, CancellationToken cancel)
    {
        byte[] buffer = new byte[MaxBodySize + 1];
        if (contentLength > MaxBodySize)
        {
            if (contentLength <= MaxDrainSize)
            {
                await DrainAsync(body, buffer, cancel).ConfigureAwait(false);
            }
            throw TooLarge(contentLength.Value);
        }
        int length = 0;
        while (length < buffer.Length)
        {
            int n = await body.ReadAsync(buffer.AsMemory(length), cancel).ConfigureAwait(false);
            if (n == 0)
            {
                return buffer[..length];
            }
            length += n;
        }
        await DrainAsync(body, buffer, cancel).ConfigureAwait(false);
        throw TooLarge(length);
    }

    /// <summary>Reads and discards what is left of a refused body, <see cref="MaxDrainSize"/> bytes at most.</summary>
    private static async Task DrainAsync(Stream body, byte[] scratch, CancellationToken cancel)
    {
        try
        {
            int left = MaxDrainSize;
            int n;
            while (left > 0 && (n = await body.ReadAsync(scratch.AsMemory(0, Math.Min(left, scratch.Length)), cancel).ConfigureAwait(false)) > 0)
            {
                left -= n;
            }
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException)
        {
            // Over Kestrel's own limit (MaxDrainSize too): stop draining; the answer goes out with "Connection: close".
        }
    }

    private static ApiFault TooLarge(long length) =>
        new($"the body ({length} bytes or more) is over the limit of {MaxBodySize} bytes", ApiFault.PayloadTooLarge);

    private static string Name<T>(JsonTypeInfo<T> type) => type.Type.Name;
}
