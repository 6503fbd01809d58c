namespace VmmSharp.Cli.Api;

/// <summary>
/// A request the API refuses: its message becomes the answer's <c>fault_message</c>, with <see cref="Status"/> (400 but
/// for a body over the size bound, 413).
/// </summary>
internal sealed class ApiFault(string message, int status = ApiFault.BadRequest) : Exception(message)
{
    public const int BadRequest = 400;

    public const int PayloadTooLarge = 413;

    public int Status { get; } = status;
}
