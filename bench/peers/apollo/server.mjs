// Apollo Server 5 + DataLoader over the JSONPlaceholder example's REST service: the Node peer of
// bench/graphql_benchmarks.py, written as an Apollo user would (tailcallhq/graphql-benchmarks' peer,
// with a per-request DataLoader for Post.user).
//
//   UPSTREAM_URL=http://127.0.0.1:3000 PORT=0 node server.mjs
//
// The schema is the example app's (`bff schema --app examples.jsonplaceholder:app`) for the fields the
// benchmark asks for, so both answer byte for byte the same JSON. Downstream calls go through one
// keep-alive agent (node:http), as the tailcall peer's axios does. Prints `listening: URL` once ready.
import http from "node:http";

import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import DataLoader from "dataloader";

const upstream = new URL(process.env.UPSTREAM_URL ?? "http://127.0.0.1:3000");
const agent = new http.Agent({ keepAlive: true, maxSockets: 100 });

function getJSON(path) {
  return new Promise((resolve, reject) => {
    const request = http.get(
      { host: upstream.hostname, port: upstream.port, path, agent, headers: { accept: "application/json" } },
      (response) => {
        const chunks = [];
        response.on("data", (chunk) => chunks.push(chunk));
        response.on("error", reject);
        response.on("end", () => {
          if (response.statusCode !== 200) {
            reject(new Error(`GET ${path} answered ${response.statusCode}`));
            return;
          }
          try {
            resolve(JSON.parse(Buffer.concat(chunks).toString("utf8")));
          } catch (error) {
            reject(error);
          }
        });
      },
    );
    request.on("error", reject);
  });
}

async function usersById(ids) {
  const query = ids.map((id) => `id=${encodeURIComponent(id)}`).join("&");
  const users = await getJSON(`/users?${query}`);
  const byId = new Map(users.map((user) => [String(user.id), user]));
  return ids.map((id) => byId.get(id) ?? null);
}

const typeDefs = `#graphql
  type User {
    id: ID!
    name: String!
    username: String!
    email: String!
  }

  type Post {
    id: ID!
    userId: ID!
    title: String!
    body: String!
    user: User
  }

  type Query {
    posts: [Post!]!
    greet: String!
  }
`;

const resolvers = {
  Query: {
    posts: () => getJSON("/posts"),
    greet: () => "Hello World!",
  },
  Post: {
    user: (post, _args, context) => context.users.load(String(post.userId)),
  },
};

const server = new ApolloServer({ typeDefs, resolvers });
const { url } = await startStandaloneServer(server, {
  listen: { host: "127.0.0.1", port: Number(process.env.PORT ?? 0) },
  context: async () => ({ users: new DataLoader(usersById) }),
});
console.log(`listening: ${url}`);
